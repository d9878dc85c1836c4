"""One run: wire the pieces together, advance the clock, collect the result."""

from __future__ import annotations

from collections.abc import Callable

import simpy

from sim.autoscale import autoscalers
from sim.cluster import Cluster
from sim.control import Failover, HealthChecker, Monitor, OverloadMonitor, Restarter, TrafficManager
from sim.engine import ENGINES, Engine
from sim.faults import FaultContext, inject
from sim.mail import MailSenders
from sim.metrics import record_slo_events, summarize
from sim.recorder import Recorder
from sim.result import Result
from sim.rng import Streams
from sim.scenario import Scenario, choose_engine
from sim.topology import build_topology
from sim.trace import Trace

__all__ = ["run"]

Progress = Callable[[float, float], None]


def run(scenario: Scenario, seed: int | None = None, progress: Progress | None = None) -> Result:
    """Simulate ``scenario`` once and return its :class:`~sim.result.Result`.

    ``seed`` overrides the scenario's seed; the same scenario and seed give the same result.
    ``progress(now, end)`` is called as simulated time advances (about 200 times per run).

    >>> from sim.loader import parse_scenario
    >>> from sim.topology import EXAMPLE
    >>> result = run(parse_scenario(EXAMPLE), seed=1)
    >>> result.summary["availability"] > 0.99
    True
    """
    seed = scenario.seed if seed is None else seed
    if scenario.engine == "auto":  # validation resolves it at the edge; a copy made with engine="auto" is not
        scenario = scenario.model_copy(update={"engine": choose_engine(scenario)})
    env = simpy.Environment()
    streams = Streams(seed)
    trace = Trace()
    graph = build_topology(scenario)
    cluster = Cluster(env, scenario, graph, trace)
    recorder = Recorder(scenario, cluster)
    engine: Engine = ENGINES[scenario.engine](env, scenario, cluster, streams, recorder)
    failover = Failover(env, cluster, scenario.policies.failover)
    cluster.listeners = [failover, engine]
    policies = scenario.policies
    HealthChecker(env, cluster, policies.load_balancer.health_check, engine)
    TrafficManager(env, cluster, policies.failover)
    OverloadMonitor(env, cluster, engine, policies.server.overload_threshold,
                    policies.load_balancer.health_check.interval)
    engine.crash_hook = Restarter(env, cluster).crash
    autoscalers(env, cluster, engine)
    faults = FaultContext(env, cluster, streams, monitor=Monitor(env, cluster, recorder))
    for i, fault in enumerate(scenario.faults):
        inject(faults, fault, scenario.fault_id(i))
    env.process(recorder.sample(env, cluster))
    engine.start()
    mail = MailSenders(env, scenario, cluster, streams, engine, recorder.mail) if recorder.mail else None
    if mail is not None:
        mail.start()

    end = scenario.duration + engine.drain_time()
    steps = 200 if progress else 1
    for k in range(1, steps + 1):
        env.run(until=end * k / steps)
        if progress:
            progress(env.now, end)
    if mail is not None:
        mail.finish()
    engine.finish()
    record_slo_events(scenario, cluster, recorder, trace)  # the one step that writes them; the summary reads them
    stats = summarize(scenario, cluster, recorder, trace, seed)  # pure: changes neither the log nor the recorder
    return Result(scenario=scenario, seed=seed, stats=stats, trace=trace, recorder=recorder, cluster=cluster)
