"""Pipeline health through the FC 3.0 API: is the path that brings pushes to acrsync in place?

Checks: the on_push function exists; it has an EventBridge trigger that is enabled and whose pattern lets
``acs.cr`` ``cr:Artifact:PushCompleted`` events through (or an HTTP trigger for the ACR webhook); the
reconcile and compliance functions each have an enabled timer trigger. ``evaluate`` is pure (it reads the
replies of GetFunction/ListTriggers); ``check`` does the reads.

Trigger shapes: EventBridgeTriggerConfig (triggerEnable, eventRuleFilterPattern as a JSON string)
https://www.alibabacloud.com/help/en/functioncompute/fc/developer-reference/api-fc-2023-03-30-struct-eventbridgetriggerconfig
and TimerTriggerConfig (cronExpression, enable, payload)
https://www.alibabacloud.com/help/en/functioncompute/fc/developer-reference/api-fc-2023-03-30-struct-timertriggerconfig
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from acrsync.cloud.errors import CloudError, NotFound
from acrsync.compliance.findings import Finding, finding
from acrsync.config import Config
from acrsync.grants.findings import Evidence, Fix, Severity
from acrsync.value import Frozen, dataclass

PUSH_SOURCE = "acs.cr"
PUSH_TYPE = "cr:Artifact:PushCompleted"


class FcReader(Protocol):
    def get_function(self, name: str) -> dict[str, Any]: ...
    def list_triggers(self, function_name: str) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class FunctionState(Frozen):
    """What FC said about one function: None when it does not exist."""

    name: str
    function: dict[str, Any] | None
    triggers: list[dict[str, Any]]


def _json_object(raw: Any) -> dict[str, Any]:
    """FC returns some trigger fields as a JSON string, some already parsed; anything else reads as empty."""
    if isinstance(raw, dict):
        return raw
    try:
        found = json.loads(raw or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _config(trigger: dict[str, Any]) -> dict[str, Any]:
    return _json_object(trigger.get("triggerConfig"))


def _pattern(cfg: dict[str, Any]) -> dict[str, Any]:
    return _json_object(cfg.get("eventRuleFilterPattern"))


def _lets_pushes_through(pattern: dict[str, Any]) -> bool:
    """Exact-value patterns: ``source`` must allow acs.cr and ``type`` PushCompleted (absent key: any)."""
    for key, want in (("source", PUSH_SOURCE), ("type", PUSH_TYPE)):
        values = pattern.get(key)
        if values is None:
            continue
        if not isinstance(values, list) or want not in values:
            return False
    return True


def _enabled(cfg: dict[str, Any], key: str) -> bool:
    value = cfg.get(key, True)           # both documents give true as the default
    return value is True or str(value).lower() == "true"


def _timer_fix(fn: str, schedule: str) -> Fix:
    return Fix(summary=f"give {fn} an enabled timer trigger (s.yaml: triggerType timer, "
                       f"cronExpression \"{schedule}\", enable: true) and run `s deploy`",
               commands=["s deploy"])


def evaluate(config: Config, on_push: FunctionState, reconcile: FunctionState,
             compliance: FunctionState) -> list[Finding]:
    """The findings for what FC returned (no I/O)."""
    out: list[Finding] = []
    for state in (on_push, reconcile, compliance):
        if state.function is None:
            out.append(
                finding(
                    "PIPELINE_FUNCTION_MISSING",
                    "*",
                    f"the function {state.name} does not exist in "
                    f"{config.source.region}; deploy it with `s deploy` (s.yaml)",
                    evidence=[Evidence(source=f"GetFunction {state.name}", detail="FunctionNotFound")],
                    fix=Fix(summary="deploy the functions", commands=["s deploy"]),
                )
            )
    if on_push.function is not None:
        out += _on_push(on_push)
    schedules = {reconcile.name: "0 */10 * * * *", compliance.name: config.compliance.schedule}
    for state in (reconcile, compliance):
        if state.function is None:
            continue
        timers = [t for t in state.triggers if t.get("triggerType") == "timer"]
        ev = [
            Evidence(
                source=f"ListTriggers {state.name}",
                detail=", ".join(f"{t.get('triggerName')} ({t.get('triggerType')})" for t in state.triggers)
                or "no triggers",
            )
        ]
        if not timers:
            out.append(
                finding(
                    "PIPELINE_TIMER_MISSING",
                    "*",
                    f"{state.name} has no timer trigger, so it never runs by itself",
                    evidence=ev,
                    fix=_timer_fix(state.name, schedules[state.name]),
                )
            )
        elif not any(_enabled(_config(t), "enable") for t in timers):
            names = ", ".join(str(t.get("triggerName")) for t in timers)
            out.append(
                finding(
                    "PIPELINE_TIMER_DISABLED",
                    "*",
                    f"the timer trigger of {state.name} ({names}) is disabled",
                    evidence=ev,
                    fix=_timer_fix(state.name, schedules[state.name]),
                )
            )
    return out


def _on_push(state: FunctionState) -> list[Finding]:
    bridges = [t for t in state.triggers if t.get("triggerType") == "eventbridge"]
    http = [t for t in state.triggers if t.get("triggerType") == "http"]
    ev = [Evidence(source=f"ListTriggers {state.name}",
                   detail=json.dumps([{k: t.get(k) for k in ("triggerName", "triggerType", "triggerConfig")}
                                      for t in state.triggers]))]
    fix = Fix(summary=f"give {state.name} an enabled EventBridge trigger with the pattern "
                      f'{{"source":["{PUSH_SOURCE}"],"type":["{PUSH_TYPE}"]}} (s.yaml, trigger acr-events) '
                      "and run `s deploy`, or configure the ACR webhook to its HTTP trigger",
              commands=["s deploy"])
    if not bridges and not http:
        return [
            finding(
                "PIPELINE_TRIGGER_MISSING",
                "*",
                f"{state.name} has neither an EventBridge nor an HTTP trigger: no push reaches acrsync",
                evidence=ev,
                fix=fix,
            )
        ]
    if not bridges:
        return []  # webhook only: delivery is the ACR webhook's (EVENTS_NOT_ARRIVING tells)
    enabled = [t for t in bridges if _enabled(_config(t), "triggerEnable")]
    if not enabled and not http:
        return [
            finding(
                "PIPELINE_TRIGGER_DISABLED",
                "*",
                f"the EventBridge trigger of {state.name} is disabled",
                evidence=ev,
                fix=fix,
            )
        ]
    if enabled and not any(_lets_pushes_through(_pattern(_config(t))) for t in enabled):
        return [
            finding(
                "PIPELINE_TRIGGER_FILTER",
                "*",
                f"the EventBridge trigger of {state.name} does not let "
                f"{PUSH_SOURCE} {PUSH_TYPE} events through",
                evidence=ev,
                fix=fix,
            )
        ]
    return []


def check(config: Config, fc: FcReader | None, *, why_not: str = "") -> tuple[list[Finding], str]:
    """(findings, note). Without FC access the pipeline is noted as not checked: one info finding."""
    names = config.compliance.functions
    if names.check == "never":
        return [], "not checked: compliance.functions.check is never"
    severity: Severity = "error" if names.check == "always" else "info"
    if fc is None:
        why = why_not or "no FC client"
        return [_not_checked(why, severity)], f"not checked: {why}"
    try:
        states = [_read(fc, name) for name in (names.on_push, names.reconcile, names.compliance)]
    except CloudError as e:
        why = f"{e.code}: {e.message}"[:300]
        return [_not_checked(why, severity)], f"not checked: {why}"
    return evaluate(config, *states), "checked"


def _read(fc: FcReader, name: str) -> FunctionState:
    try:
        fn = fc.get_function(name)
    except NotFound:
        return FunctionState(name, None, [])
    return FunctionState(name, fn, fc.list_triggers(name))


def _not_checked(why: str, severity: Severity) -> Finding:
    return finding(
        "PIPELINE_NOT_CHECKED",
        "*",
        severity=severity,
        message=f"pipeline health was not checked ({why}). Inside Function "
        "Compute the function role needs fc:GetFunction and fc:ListTriggers; from a shell, run with "
        "credentials that have them",
        evidence=[Evidence(source="FC 3.0 API", detail=why)],
        fix=Fix(
            summary="grant fc:GetFunction and fc:ListTriggers on the acrsync functions "
            "(`acrsync permissions --principal function`)"
        ),
    )
