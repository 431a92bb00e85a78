if DEVICE_CHECKED:

    rule check_device:
        """GPU/Ascend runs: MindSpore computes on train.device_target, else one message naming what it needs and what this host has."""
        output:
            "results/device/check.json",
        log:
            "results/logs/check_device.log",
        resources:
            **stage_resources("other"),
            **device_resources(1),
        params:
            target=config["train"]["device_target"],
            device_id=config["train"]["device_id"],
            code=script_code("check_device.py"),
        script:
            "../scripts/check_device.py"
