import hashlib
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import mindspore as ms
import numpy as np
import pytest

from alignedreid.foundation.config import resolve
from alignedreid.foundation.download import download
from alignedreid.foundation.errors import CheckpointError
from alignedreid.model.checkpoint import load_backbone_into, to_project_names
from alignedreid.model.network import ResNet, build_model
from alignedreid.model.pretrained import prepare_backbone_checkpoint

ms.set_context(mode=ms.PYNATIVE_MODE)
ms.set_device("CPU")


def pretrained_section(**keys) -> dict:
    return resolve({"pretrained": keys})["pretrained"]


def zoo_style_checkpoint(path, depth=18, flavour="zoo", seed=0):
    """A ResNet checkpoint named as the model zoo (or mindcv) writes them, with a classifier and optimiser state."""
    rng = np.random.default_rng(seed)
    entries = []
    for p in ResNet(depth).get_parameters():
        name = p.name if flavour == "zoo" else p.name.replace(".down_sample_layer.", ".down_sample.")
        entries.append({"name": name, "data": ms.Tensor(rng.normal(size=p.shape).astype(np.float32))})
        if flavour == "zoo" and name.endswith("conv1.weight"):
            entries.append({"name": "moments." + name, "data": ms.Tensor(np.zeros(p.shape, np.float32))})
    head = "end_point" if flavour == "zoo" else "classifier"
    entries += [
        {"name": f"{head}.weight", "data": ms.Tensor(np.zeros((1001, 512), np.float32))},
        {"name": f"{head}.bias", "data": ms.Tensor(np.zeros((1001,), np.float32))},
        {"name": "global_step", "data": ms.Tensor(np.array([5], np.int32))},
    ]
    ms.save_checkpoint(entries, str(path))
    return {e["name"]: e["data"].asnumpy() for e in entries}


def _names(*names):
    return to_project_names(dict.fromkeys(names, 0))


def test_name_map():
    named, dropped, layout = _names("conv1.weight", "layer1.0.down_sample.0.weight", "end_point.weight", "moments.conv1.weight", "global_step")
    assert layout == "imagenet" and dropped == ["moments.conv1.weight", "global_step"]
    assert set(named) == {"backbone.conv1.weight", "backbone.layer1.0.down_sample_layer.0.weight", "classifier.weight"}
    named, _, layout = _names("network.backbone.layer2.1.bn1.gamma", "network.classifier.bias", "network.local_conv.weight", "learning_rate")
    assert layout == "project" and set(named) == {"backbone.layer2.1.bn1.gamma", "classifier.bias", "local_conv.weight"}


@pytest.mark.parametrize("flavour", ["zoo", "mindcv"])
def test_checkpoint_maps_and_loads(tmp_path, flavour):
    src = zoo_style_checkpoint(tmp_path / "src.ckpt", flavour=flavour)
    info = prepare_backbone_checkpoint(pretrained_section(path=str(tmp_path / "src.ckpt")), 18, tmp_path / "backbone.ckpt", tmp_path / "cache")
    n_backbone = len(list(ResNet(18).get_parameters()))
    assert info["loaded"] == n_backbone
    assert set(info["dropped"]) >= {"global_step"}
    net = build_model(7, 18, 128)
    assert load_backbone_into(net, tmp_path / "backbone.ckpt") == n_backbone
    key = "layer1.0.conv1.weight"
    np.testing.assert_array_equal(net.backbone.layer1[0].conv1.weight.asnumpy(), src[key])


def test_wrong_depth_and_garbage(tmp_path):
    zoo_style_checkpoint(tmp_path / "r18.ckpt", depth=18)
    with pytest.raises(CheckpointError, match="shape|only"):
        prepare_backbone_checkpoint(pretrained_section(path=str(tmp_path / "r18.ckpt")), 50, tmp_path / "o.ckpt", tmp_path)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="junk.ckpt: not a readable MindSpore checkpoint"):
        prepare_backbone_checkpoint(pretrained_section(path=str(tmp_path / "junk.ckpt")), 18, tmp_path / "o.ckpt", tmp_path)
    data = (tmp_path / "r18.ckpt").read_bytes()
    (tmp_path / "trunc.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="trunc.ckpt"):
        prepare_backbone_checkpoint(pretrained_section(path=str(tmp_path / "trunc.ckpt")), 18, tmp_path / "o.ckpt", tmp_path)
    assert not (tmp_path / "o.ckpt").exists()


def test_unrelated_checkpoint_loads_almost_nothing(tmp_path):
    ms.save_checkpoint(
        [
            {"name": "conv1.weight", "data": ms.Tensor(np.zeros((64, 3, 7, 7), np.float32))},
            {"name": "something.else", "data": ms.Tensor(np.zeros((3,), np.float32))},
        ],
        str(tmp_path / "x.ckpt"),
    )
    with pytest.raises(CheckpointError, match="only 1 of"):
        prepare_backbone_checkpoint(pretrained_section(path=str(tmp_path / "x.ckpt")), 18, tmp_path / "o.ckpt", tmp_path)


class FlakyHandler(SimpleHTTPRequestHandler):
    """Serves files with Range support; the first full request is cut off half-way."""

    state = {"cut": True, "requests": []}

    def log_message(self, *a):
        pass

    def do_GET(self):
        path = self.translate_path(self.path)
        data = open(path, "rb").read()
        rng = self.headers.get("Range")
        self.state["requests"].append(rng)
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        body = data[start:]
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(body)))
        if rng:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if self.state["cut"] and not rng:
            self.state["cut"] = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    FlakyHandler.state = {"cut": True, "requests": []}
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(FlakyHandler, directory=str(root)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_interrupted_download_resumes_and_is_cached(server, tmp_path):
    root, base = server
    src = zoo_style_checkpoint(root / "resnet18.ckpt")
    digest = hashlib.sha256((root / "resnet18.ckpt").read_bytes()).hexdigest()
    cfg = {"url": f"{base}/resnet18.ckpt", "sha256": digest, "retries": 3}
    info = prepare_backbone_checkpoint(pretrained_section(**cfg), 18, tmp_path / "b.ckpt", tmp_path / "cache")
    reqs = FlakyHandler.state["requests"]
    assert reqs[0] is None and reqs[1].startswith("bytes=") and int(reqs[1][6:-1]) > 0  # resumed, not restarted
    assert info["sha256"] == digest and info["loaded"] > 0
    assert "layer4.1.bn2.gamma" in src
    n = len(reqs)
    prepare_backbone_checkpoint(pretrained_section(**cfg), 18, tmp_path / "b2.ckpt", tmp_path / "cache")
    assert len(FlakyHandler.state["requests"]) == n  # cached: nothing downloaded the second time


def test_wrong_checksum_deletes_download(server, tmp_path):
    root, base = server
    (root / "f.bin").write_bytes(b"x" * 5000)
    FlakyHandler.state["cut"] = False
    with pytest.raises(CheckpointError, match="sha256 mismatch"):
        download(f"{base}/f.bin", tmp_path / "f.bin", sha256="0" * 64, retries=5, timeout=60)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()


def test_missing_url_is_clear(server, tmp_path):
    _, base = server
    FlakyHandler.state["cut"] = False
    with pytest.raises(CheckpointError):
        download(f"{base}/nope.ckpt", tmp_path / "n.ckpt", sha256=None, retries=1, timeout=60)


def test_plain_http_without_a_checksum_is_refused_before_any_request(server, tmp_path):
    root, base = server
    (root / "f.bin").write_bytes(b"x" * 5000)
    with pytest.raises(CheckpointError, match=r"plain http download without pretrained.sha256 cannot be trusted"):
        download(f"{base}/f.bin", tmp_path / "f.bin", sha256=None, retries=1, timeout=60)
    assert FlakyHandler.state["requests"] == [] and not (tmp_path / "f.bin").exists()


class LyingHandler(SimpleHTTPRequestHandler):
    """mode 'nolength': no Content-Length, the connection closes half-way; 'partial': a 206 for bytes
    100- to a request without Range; 'honest': the whole file with its length."""

    mode = "honest"

    def log_message(self, *a):
        pass

    def do_GET(self):
        data = open(self.translate_path(self.path), "rb").read()
        if self.mode == "partial":
            self.send_response(206)
            self.send_header("Content-Range", f"bytes 100-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(data) - 100))
            self.end_headers()
            self.wfile.write(data[100:])
            return
        self.send_response(200)
        if self.mode == "honest":
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data if self.mode == "honest" else data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def https_server(tmp_path, monkeypatch):
    """A real HTTPS server on loopback with a self-signed certificate the client is told to trust."""
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    root = tmp_path / "www"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(LyingHandler, directory=str(root)))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"https://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_a_download_that_cannot_be_checked_is_never_cached(https_server, tmp_path):
    root, base = https_server
    (root / "f.bin").write_bytes(bytes(range(256)) * 40)
    LyingHandler.mode = "nolength"  # ends early, without saying how long the file is
    with pytest.raises(CheckpointError, match=r"cannot be checked -- no pretrained.sha256 and the server did not say how long"):
        download(f"{base}/f.bin", tmp_path / "f.bin", sha256=None, retries=1, timeout=60)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()
    LyingHandler.mode = "partial"  # 206 from byte 100 to a request from 0
    with pytest.raises(CheckpointError, match=r"sent part of the file \(bytes 100-"):
        download(f"{base}/f.bin", tmp_path / "f.bin", sha256=None, retries=1, timeout=60)
    assert not (tmp_path / "f.bin").exists() and not (tmp_path / "f.bin.part").exists()
    LyingHandler.mode = "honest"  # the length is given and all of it arrives: kept
    assert download(f"{base}/f.bin", tmp_path / "f.bin", sha256=None, retries=1, timeout=60).read_bytes() == (root / "f.bin").read_bytes()
