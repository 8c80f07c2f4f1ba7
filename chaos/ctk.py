"""Chaos Toolkit interop: scenarios out as experiments, experiments in as scenarios.

Export (`gameday chaostoolkit export NAME`) writes a Chaos Toolkit experiment (JSON) whose
method replays the scenario's faults on its declared (unscaled) timeline:

- toxics and links through the Toxiproxy extension (`chaostoxi.toxic.actions.create_toxic`
  / `delete_toxic`, `chaostoxi.proxy.actions.disable_proxy` / `enable_proxy`);
- gameday's own faults (Redis failover, feed silent or duplicating, a process killed, a
  bad canary) through this module's `inject` / `revert`, which Chaos Toolkit calls as a
  Python provider when gameday is installed next to it;
- steady-state probes through the Prometheus extension (`chaosprometheus.probes.query`);
- every revert again under `rollbacks`, and the scenario itself in a `gameday`
  extension block, so importing the export gives back the same scenario.

Import (`gameday chaostoolkit import FILE`, or `gameday drill FILE.json`) takes the
`gameday` extension when there is one; otherwise it walks the method (pauses included)
and turns each supported action into a timed fault. Anything else is a ScenarioError
naming the activity and what is supported.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any, Final

import yaml

from chaos.scenario import Probe, Scenario, ScenarioError, file_error, parse

TOXIC_ACTIONS: Final = "chaostoxi.toxic.actions"
PROXY_ACTIONS: Final = "chaostoxi.proxy.actions"
PROMETHEUS_PROBES: Final = "chaosprometheus.probes"
OWN: Final = "chaos.ctk"
TOXIC_SHORTHANDS: Final = {
    # chaostoxi's helpers: toxic type and the argument -> Toxiproxy attribute names
    "create_latency_toxic": ("latency", {"latency": "latency", "jitter": "jitter"}),
    "create_timeout_toxic": ("timeout", {"timeout": "timeout"}),
    "create_bandwidth_degradation_toxic": ("bandwidth", {"rate": "rate"}),
    "create_slow_connection_close_toxic": ("slow_close", {"delay": "delay"}),
    "create_slicer_toxic": (
        "slicer",
        {"average_size": "average_size", "size_variation": "size_variation", "delay": "delay"},
    ),
    "create_limiter_toxic": ("limit_data", {"bytes": "bytes"}),
    "create_reset_peer_toxic": ("reset_peer", {"timeout": "timeout"}),
}
UNCLOSED_MIN_S: Final = 60.0
"""A fault the method never reverts lasts until the method ends, and at least this long."""
SUPPORTED: Final = (
    f"{TOXIC_ACTIONS}.create_toxic|{'|'.join(TOXIC_SHORTHANDS)}|delete_toxic, "
    f"{PROXY_ACTIONS}.disable_proxy|enable_proxy, {OWN}.inject|revert (actions); "
    f"{PROMETHEUS_PROBES}.query (steady-state probes)"
)


# --- export -------------------------------------------------------------------------------


def _python(module: str, func: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "python", "module": module, "func": func, "arguments": arguments}


def _actions(fault: dict[str, Any], index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inject, revert) activities for one fault of the scenario file."""
    kind, name = fault["kind"], f"{fault['kind']}-{index}"
    if kind == "toxic":
        toxic = f"gameday-{name}"
        inject = _python(
            TOXIC_ACTIONS,
            "create_toxic",
            {
                "for_proxy": fault["link"],
                "toxic_name": toxic,
                "toxic_type": fault["toxic"],
                "stream": "downstream",
                "toxicity": 1.0,
                "attributes": fault.get("attributes", {}),
            },
        )
        revert = _python(
            TOXIC_ACTIONS, "delete_toxic", {"for_proxy": fault["link"], "toxic_name": toxic}
        )
    elif kind == "link_down":
        inject = _python(PROXY_ACTIONS, "disable_proxy", {"proxy_name": fault["link"]})
        revert = _python(PROXY_ACTIONS, "enable_proxy", {"proxy_name": fault["link"]})
    else:
        spec = {k: v for k, v in fault.items() if k not in ("at", "duration")}
        inject = _python(OWN, "inject", {"fault": spec, "name": name})
        revert = _python(OWN, "revert", {"name": name})
    return (
        {"type": "action", "name": f"inject {name}", "provider": inject},
        {"type": "action", "name": f"revert {name}", "provider": revert},
    )


def export(scenario: Scenario) -> dict[str, Any]:
    """The scenario as a Chaos Toolkit experiment (declared durations, time scale 1)."""
    raw = yaml.safe_load(Path(scenario.source).read_text())
    timeline: list[tuple[float, dict[str, Any]]] = []
    rollbacks = []
    for i, (spec, fault) in enumerate(zip(scenario.faults, raw.get("faults", []), strict=True)):
        inject, revert = _actions(fault, i)
        timeline += [(spec.at_s, inject), (spec.at_s + spec.duration_s, revert)]
        rollbacks.append(revert)
    method, clock = [], 0.0
    for at, activity in sorted(timeline, key=lambda item: item[0]):
        method.append({**activity, "pauses": {"before": round(at - clock, 3)}})
        clock = at
    probes = [
        {
            "type": "probe",
            "name": probe.name,
            "tolerance": {"type": "range", "range": [probe.low, probe.high], "target": "value"},
            "provider": _python(PROMETHEUS_PROBES, "query", {"query": probe.query}),
        }
        for probe in scenario.steady_state_probes
    ]
    return {
        "version": "1.0.0",
        "title": f"gameday drill: {scenario.name}",
        "description": scenario.description,
        "tags": ["gameday", scenario.name],
        "configuration": {
            "toxiproxy_host": {"type": "env", "key": "GAMEDAY_TOXIPROXY_HOST"},
            "toxiproxy_api_port": {"type": "env", "key": "GAMEDAY_TOXIPROXY_PORT"},
            "prometheus_base_url": {"type": "env", "key": "GAMEDAY_PROMETHEUS_URL"},
        },
        "steady-state-hypothesis": {"title": "the pipeline is healthy", "probes": probes},
        "method": method,
        "rollbacks": rollbacks,
        "extensions": [{"name": "gameday", "scenario": raw}],
    }


# --- import -------------------------------------------------------------------------------


def import_experiment(doc: Any, source: str) -> Scenario:
    return parse(scenario_of(doc, source), f"{source} (imported)")


def scenario_of(doc: Any, source: str) -> dict[str, Any]:
    """The scenario file content (before validation) an experiment amounts to."""
    if not isinstance(doc, dict):
        raise ScenarioError(f"{source}: a Chaos Toolkit experiment is a JSON object")
    for extension in doc.get("extensions", []) or []:
        if isinstance(extension, dict) and extension.get("name") == "gameday":
            scenario = extension.get("scenario")
            if not isinstance(scenario, dict):
                raise ScenarioError(f"{source}: the gameday extension holds no scenario")
            return scenario
    title = str(doc.get("title") or Path(source).stem)
    faults = _faults(doc.get("method"), source)
    _check_rollbacks(faults, doc.get("rollbacks") or [], source)
    probes = _probes(doc.get("steady-state-hypothesis") or {}, source)
    return {
        "name": re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:60] or "imported",
        "description": str(doc.get("description", "")),
        "faults": [f for f in faults.values() if "duration" in f],
        "steady_state": {
            "probes": [
                {"name": p.name, "query": p.query, "within": [p.low, p.high]} for p in probes
            ]
        },
        # An experiment declares no alerts: the drill reports the ones that fired.
        "expect": {"other_alerts": True},
    }


def _activity(item: Any, where: str) -> tuple[str, str, dict[str, Any], dict[str, Any]]:
    if not isinstance(item, dict) or not isinstance(item.get("provider"), dict):
        raise ScenarioError(f"{where}: an activity needs a provider")
    provider = item["provider"]
    module, func = str(provider.get("module", "")), str(provider.get("func", ""))
    if provider.get("type") != "python":
        raise ScenarioError(
            f"{where} ({item.get('name', '?')}): {provider.get('type')} providers are not "
            f"supported; gameday imports {SUPPORTED}"
        )
    arguments = provider.get("arguments") or {}
    return module, func, dict(arguments), dict(item.get("pauses") or {})


def _faults(method: Any, source: str) -> dict[str, dict[str, Any]]:
    """Walk the method on its clock: each inject opens a fault, its revert closes it."""
    if not isinstance(method, list) or not method:
        raise ScenarioError(f"{source}: method: must be a non-empty list of activities")
    clock, open_faults, started = 0.0, {}, {}
    for i, item in enumerate(method):
        where = f"{source}: method[{i}]"
        module, func, args, pauses = _activity(item, where)
        clock += float(pauses.get("before", 0))
        key, fault = _translate(module, func, args, where)
        if fault is not None:
            open_faults[key] = {**fault, "at": _seconds(clock)}
            started[key] = clock
        elif key in open_faults and "duration" not in open_faults[key]:
            open_faults[key]["duration"] = _seconds(clock - started[key])
        clock += float(pauses.get("after", 0))
    for key, fault in open_faults.items():  # never reverted in the method: until it ends
        if "duration" not in fault:
            fault["duration"] = _seconds(max(clock - started[key], UNCLOSED_MIN_S))
    return open_faults


def _seconds(value: float) -> str:
    """A scenario duration: whole seconds, at least 1."""
    return f"{max(1, round(value))}s"


def _check_rollbacks(faults: dict[str, dict[str, Any]], rollbacks: Any, source: str) -> None:
    """Rollbacks undo what the method left in place (a fault the method never reverts
    lasts until it ends): they change no timing, but must be actions gameday knows."""
    for i, item in enumerate(rollbacks if isinstance(rollbacks, list) else []):
        module, func, args, _ = _activity(item, f"{source}: rollbacks[{i}]")
        _translate(module, func, args, f"{source}: rollbacks[{i}]")


def _translate(
    module: str, func: str, args: dict[str, Any], where: str
) -> tuple[str, dict[str, Any] | None]:
    """(fault key, the fault it opens) or (key, None) for an action that closes one."""
    if module == TOXIC_ACTIONS and func == "delete_toxic":
        return f"toxic:{args.get('for_proxy')}:{args.get('toxic_name')}", None
    if module == TOXIC_ACTIONS and (func == "create_toxic" or func in TOXIC_SHORTHANDS):
        if func == "create_toxic":
            toxic, attributes = args.get("toxic_type"), dict(args.get("attributes") or {})
        else:
            toxic, names = TOXIC_SHORTHANDS[func]
            attributes = {names[k]: v for k, v in args.items() if k in names}
        key = f"toxic:{args.get('for_proxy')}:{args.get('toxic_name')}"
        fault = {"kind": "toxic", "link": args.get("for_proxy"), "toxic": toxic}
        return key, {**fault, "attributes": attributes}
    if module == PROXY_ACTIONS and func in ("disable_proxy", "enable_proxy"):
        key = f"link:{args.get('proxy_name')}"
        opened = {"kind": "link_down", "link": args.get("proxy_name")}
        return key, opened if func == "disable_proxy" else None
    if module == OWN and func in ("inject", "revert"):
        key = f"own:{args.get('name')}"
        return key, dict(args.get("fault") or {}) if func == "inject" else None
    raise ScenarioError(f"{where}: {module}.{func} is not supported; gameday imports {SUPPORTED}")


def _probes(hypothesis: Any, source: str) -> list[Probe]:
    out = []
    for i, item in enumerate(hypothesis.get("probes", []) if isinstance(hypothesis, dict) else []):
        where = f"{source}: steady-state-hypothesis.probes[{i}]"
        module, func, args, _ = _activity(item, where)
        if (module, func) != (PROMETHEUS_PROBES, "query") or not args.get("query"):
            raise ScenarioError(
                f"{where}: {module}.{func} is not supported; gameday imports {SUPPORTED}"
            )
        tolerance = item.get("tolerance")
        if isinstance(tolerance, int | float) and not isinstance(tolerance, bool):
            low = high = float(tolerance)
        elif isinstance(tolerance, dict) and tolerance.get("type") == "range":
            low, high = (float(v) for v in tolerance["range"])
        else:
            raise ScenarioError(f"{where}.tolerance: gameday reads a number or a range tolerance")
        out.append(Probe(str(item.get("name", f"probe {i}")), str(args["query"]), low, high))
    return out


def load_experiment(path: Path) -> Scenario:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise ScenarioError(f"{path}: not valid JSON ({exc})") from None
    except (OSError, UnicodeDecodeError, RecursionError) as exc:
        raise ScenarioError(f"{path}: cannot read the experiment ({file_error(exc)})") from None
    return import_experiment(doc, str(path))


# --- Chaos Toolkit's Python provider for gameday's own faults ------------------------------

_ACTIVE: dict[str, Any] = {}


def inject(fault: dict[str, Any], name: str, configuration: Any = None) -> str:
    """Called by Chaos Toolkit: inject a gameday fault into the stack."""
    from chaos.drill import build_fault
    from chaos.scenario import fault_spec
    from pipeline.deploy import open_deployment

    del configuration
    deployment = open_deployment()  # either target
    spec = fault_spec({**fault, "at": "1s", "duration": "1s"}, f"fault {name}")
    built = build_fault(spec, deployment, deployment.endpoints())
    asyncio.run(built.inject())
    _ACTIVE[name] = built
    return built.name


def revert(name: str, configuration: Any = None) -> None:
    """Called by Chaos Toolkit: revert what `inject` did under this name (idempotent)."""
    del configuration
    built = _ACTIVE.pop(name, None)
    if built is not None:
        asyncio.run(built.revert())
