"""Test functions for localcloud's FC runtime: each handler shows one thing FC does with user code."""

import json
import logging
import os
import time


def echo(event, context):
    """The event and context as received, and who the injected credentials belong to (asked over STS)."""
    print("echo: stdout goes to the logs, not the reply")
    logging.getLogger().info("echo: logging goes to the logs too")
    return {
        "event": event.decode("utf-8"),
        "event_type": type(event).__name__,
        "request_id": context.request_id,
        "function": {"name": context.function.name, "handler": context.function.handler,
                     "memory": context.function.memory, "timeout": context.function.timeout},
        "region": context.region,
        "account_id": context.account_id,
        "has_credentials": bool(getattr(context, "credentials", None) and context.credentials.access_key_id),
        "caller_arn": _caller_arn(context),
        "env": {k: os.environ.get(k) for k in ("FC_FUNCTION_NAME", "FC_REGION", "DEMO_SETTING",
                                                 "ALIBABA_CLOUD_ECS_METADATA_DISABLED")},
        "cwd": os.getcwd(),
    }


def _caller_arn(context):
    from alibabacloud_sts20150401.client import Client
    from alibabacloud_tea_openapi.utils_models import Config

    cred = context.credentials
    endpoint = os.environ["ACRSYNC_ENDPOINT"].removeprefix("http://")
    config = Config(access_key_id=cred.access_key_id, access_key_secret=cred.access_key_secret,
                    security_token=cred.security_token, endpoint=endpoint, protocol="http",
                    region_id=context.region)
    return Client(config).get_caller_identity().body.arn


def shape(event, context):
    """Which context attributes this runtime gives, and whether the role's keys are in the environment."""
    return {"context": sorted(k for k in vars(context)), "function": sorted(vars(context.function)),
            "env_keys": bool(os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID")
                             and os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN"))}


def text(event, context):
    """A str reply goes back as is."""
    return "plain:" + event.decode("utf-8")


def fail(event, context):
    """An unhandled exception: FC answers 200 with x-fc-error-type."""
    raise ValueError("the event was refused: " + json.loads(event or b"{}").get("why", "no reason"))


def sleep(event, context):
    """Sleeps past any short timeout."""
    print("sleeping", flush=True)
    time.sleep(60)
    return "woke up"
