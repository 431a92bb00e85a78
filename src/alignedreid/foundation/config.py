"""The pipeline configuration, validated once against the schema (schema.yaml, shipped in this package) with every default filled.

The Snakefile calls :func:`resolve` before any rule is defined, so every rule sees complete,
validated sections; code outside Snakemake (tests, benchmarks) calls it too. Library functions
read validated values by key and keep no defaults of their own: the schema is the one source.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import yaml

from .errors import ConfigError

SCHEMA_PATH = Path(__file__).resolve().parent / "schema.yaml"  # package data: found wherever the package is installed


# libyaml's parser where PyYAML was built with it (the wheels are): the schema is read at every parse
# of the workflow, in every job, and the pure-Python parser takes ~10x longer on it
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_schema(path=None) -> dict:
    return yaml.load(Path(path or SCHEMA_PATH).read_text(), Loader=_SAFE_LOADER)


def _with_defaults(validator_class):
    """A validator that writes each property's default into the instance (as Snakemake's validate)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def resolve(config: dict | None = None, schema_path=None) -> dict:
    """A deep copy of ``config`` validated against the schema (default: the repository's
    schema.yaml), with every default filled in, also inside a nullable section that is
    given (``pretrained``). A bad key or value raises ConfigError naming its path in the config."""
    schema = load_schema(schema_path)
    cfg = coerce_scalars(copy.deepcopy(config or {}), schema, schema)
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = ".".join(str(p) for p in e.absolute_path) or "(top level)"
        raise ConfigError(f"config key {where}: {e.message}")
    check_consistency(cfg)
    return cfg


def _types(sub: dict) -> list[str]:
    t = sub.get("type", [])
    return [t] if isinstance(t, str) else list(t)


def _fits(value, types: list[str]) -> bool:
    """Whether ``value`` is one of the JSON-schema ``types`` (jsonschema's own type checker: a bool is no integer)."""
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER
    return any(checker.is_type(value, t) for t in types)


def coerce_scalars(value, sub: dict, root: dict):
    """Turn strings into the numbers, booleans and nulls the schema asks for, in place.

    Snakemake reads a nested ``--config`` value with YAML's base loader, so
    ``--config train='{epochs: 3}'`` arrives as ``{'epochs': '3'}``; each string where the schema
    allows no string is read again as YAML ('3' -> 3, 'true'/'false' -> booleans, 'null' -> None) and
    kept only if that gives an allowed type, so a wrong value still fails validation with its key named."""
    if "$ref" in sub:
        target = root
        for part in sub["$ref"].lstrip("#/").split("/"):
            target = target[part]
        sub = {**target, **{k: v for k, v in sub.items() if k != "$ref"}}
    if isinstance(value, dict):
        props = sub.get("properties", {})
        for key, item in value.items():
            if key in props:
                value[key] = coerce_scalars(item, props[key], root)
        return value
    if isinstance(value, list) and isinstance(sub.get("items"), dict):
        return [coerce_scalars(item, sub["items"], root) for item in value]
    types = _types(sub)
    if isinstance(value, str) and "null" in types and value.strip() in ("null", "~"):
        return None  # also where a string is allowed: a file or URL named 'null' is not meant
    if isinstance(value, str) and types and "string" not in types:
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(parsed, bool) and value.strip().lower() not in ("true", "false"):
            return value  # YAML 1.1 reads yes/no/on/off as booleans: too loose for a command line
        if _fits(parsed, types):
            return parsed
    return value


def check_consistency(cfg: dict) -> None:
    """Rules between keys that a JSON schema cannot say; each error names both keys."""
    infer, export, train = cfg["infer"], cfg["export"], cfg["train"]
    if infer["backend"] == "ascend" and infer["batch_size"] != export["batch_size"]:
        raise ConfigError(
            f"infer.batch_size ({infer['batch_size']}) must equal export.batch_size ({export['batch_size']}) with "
            "infer.backend ascend: the MindIR model runs at its exported batch size"
        )
    if infer["backend"] == "ascend" and infer["precision"] != "fp32":
        raise ConfigError(f"infer.precision {infer['precision']} needs infer.backend cpu: the ascend backend runs the MindIR model in float32")
    search = cfg["search"]
    if search["shortlist"] is not None and search["shortlist"] < search["top_k"]:
        raise ConfigError(f"search.shortlist ({search['shortlist']}) must be at least search.top_k ({search['top_k']})")
    ev = cfg["evaluation"]
    rerank_on_shortlists = ev["rerank"]["enabled"] and "global_local_rerank" in ev["variants"]
    if ev["shortlist"] is not None and rerank_on_shortlists and ev["shortlist"] < ev["rerank"]["k1"] + 1:
        raise ConfigError(
            f"evaluation.shortlist ({ev['shortlist']}) must be at least evaluation.rerank.k1 + 1 = {ev['rerank']['k1'] + 1}: "
            "global_local_rerank reads that many neighbours of each image (200 is the measured choice)"
        )
    if ev["shortlist"] is not None and ev["verification"]["variant"] == "global_local":
        raise ConfigError(
            "evaluation.verification.variant global_local needs every pair's distance, which evaluation.shortlist "
            f"({ev['shortlist']}) leaves out: set evaluation.shortlist to null or the variant to auto or global"
        )
    if train["device_num"] % train["nodes"]:
        raise ConfigError(f"train.device_num ({train['device_num']}) must be a multiple of train.nodes ({train['nodes']})")
    if train["device_num"] > 1 and train["launcher"] == "rank_table" and not train["rank_table_file"]:
        raise ConfigError("train.rank_table_file: required with train.launcher rank_table and train.device_num > 1")


def section_defaults(name: str) -> dict:
    """Defaults of one top-level section, e.g. section_defaults('evaluation')."""
    return resolve({})[name]
