"""Cross-reference and size checks of a scenario: what the models alone cannot see.

The models (:mod:`sim.scenario`) check each value where it stands. What needs the whole scenario is
checked here, on the typed objects, by :func:`check_references`, which the loader calls once the models
pass: dangling names (with a did-you-mean), duplicate ids, a fault's target that fits its kind, the
load-balancer algorithm (:data:`sim.policies.BALANCERS`), the backoffs' jitters
(:data:`sim.policies.JITTERS`), and sizes over the scenario's ``limits``
(:func:`check_sizes`). Every problem comes with the path of the field that holds it, so the loader can
point at the line. Nothing here allocates in proportion to the number of servers or databases.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Protocol

from sim.errors import format_path
from sim.faults import FAULT_KINDS
from sim.network import link_name
from sim.policies import BALANCERS, JITTERS, bulkhead_workers, unsupported_on_flow
from sim.sizing import expected_load, total_workers
from sim.units import format_duration

if TYPE_CHECKING:
    from sim.scenario import Link, Scenario, Target

__all__ = ["FieldProblem", "check_references", "check_sizes"]

FieldProblem = tuple[tuple[str | int, ...], str]
"""A problem at a field: ``(path, message)``, the path as the models spell it (``("faults", 2, "at")``)."""



class _Identified(Protocol):
    """A model with an id (a region, datacenter, database group, dependency)."""

    @property
    def id(self) -> str: ...


_NAMESPACE = "regions, datacenters, server groups, database groups and dependencies need distinct ids"


def _unknown(kind: str, name: str, known: list[str]) -> str:
    known = sorted(set(known))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    listed = ", ".join(known[:12]) + (", ..." if len(known) > 12 else "")
    return f"no {kind} '{name}'{hint}; known: {listed or 'none'}"


def _duplicates(items: list[str], path: tuple[str | int, ...], kind: str) -> Iterator[FieldProblem]:
    first: dict[str, int] = {}
    for i, item in enumerate(items):
        if item in first:
            where = format_path((*path, first[item]))
            yield (*path, i, "id"), f"duplicate {kind} id '{item}' (already used by {where})"
        else:
            first[item] = i


def _numbered(name: str, counts: dict[str, int], width: int) -> str | None:
    """Return the group whose ``<group>-<n:0width>`` ids include ``name``, if any (without listing them)."""
    group, _, digits = name.rpartition("-")
    if not (group in counts and digits.isdigit() and digits.isascii()):
        return None
    n = int(digits)
    return group if 1 <= n <= counts[group] and f"{n:0{width}d}" == digits else None


def _unknown_server(name: str, counts: dict[str, int]) -> str:
    group, _, digits = name.rpartition("-")
    if group in counts and digits.isdigit() and digits.isascii():
        n, last = int(digits), counts[group]
        if 1 <= n <= last:
            return f"no server '{name}' (did you mean '{group}-{n:02d}'?)"
        return f"no server '{name}' (group '{group}' has {group}-01 to {group}-{last:02d})"
    if sum(counts.values()) <= 10_000:
        return _unknown("server", name, [f"{g}-{n:02d}" for g, c in counts.items() for n in range(1, c + 1)])
    group = name.rpartition("-")[0]
    close = difflib.get_close_matches(group, list(counts), n=1, cutoff=0.6)
    hint = f" (did you mean a server of group '{close[0]}'?)" if close else ""
    groups = ", ".join(counts)
    return f"no server '{name}'{hint}; server ids are <group>-01, <group>-02, ... for groups: {groups}"


def _topology_ids(s: Scenario) -> list[FieldProblem]:
    """Ids that name nodes of the topology graph must be distinct, across kinds too."""
    topo = s.topology
    named: list[tuple[str, tuple[str | int, ...], str]] = []
    regions_dcs: tuple[tuple[str, str, Sequence[_Identified]], ...] = (
        ("region", "regions", topo.regions),
        ("datacenter", "datacenters", topo.datacenters),
    )
    for kind, field, items in regions_dcs:
        named += [(kind, ("topology", field, i, "id"), item.id) for i, item in enumerate(items)]
    named += [
        ("server group", ("topology", "datacenters", i, "servers", j, "id"), g.id)
        for i, d in enumerate(topo.datacenters)
        for j, g in enumerate(d.servers)
    ]
    dbs_deps: tuple[tuple[str, str, Sequence[_Identified]], ...] = (
        ("database group", "databases", topo.databases),
        ("dependency", "dependencies", topo.dependencies),
    )
    for kind, field, items in dbs_deps:
        named += [(kind, ("topology", field, i, "id"), item.id) for i, item in enumerate(items)]
    problems: list[FieldProblem] = []
    first: dict[str, tuple[str, tuple[str | int, ...]]] = {}
    for kind, path, name in named:
        if name not in first:
            first[name] = (kind, path)
            continue
        other_kind, other_path = first[name]
        where = format_path(other_path[:-1])
        if other_kind == kind:
            problems.append((path, f"duplicate {kind} id '{name}' (already used by {where})"))
        else:
            problems.append((path, f"id '{name}' is already the {other_kind} {where} ({_NAMESPACE})"))
    servers = {g.id: g.count for d in topo.datacenters for g in d.servers}
    databases = {g.id: g.count for g in topo.databases}
    for kind, path, name in named:
        if kind in ("region", "datacenter", "dependency"):
            for what, counts, width in (("server", servers, 2), ("database", databases, 4)):
                group = _numbered(name, counts, width)
                if group is not None:
                    problems.append((path, f"id '{name}' is already the name of a {what} of group '{group}'"))
    return problems


def check_references(s: Scenario) -> list[FieldProblem]:
    """Return every dangling reference, duplicate id and over-limit size in ``s``, with field paths.

    Nothing here allocates in proportion to the number of servers or databases, so a scenario asking
    for far more than its limits fails fast.
    """
    topo = s.topology
    problems: list[FieldProblem] = _topology_ids(s)
    dcs = [d.id for d in topo.datacenters]
    regions = [r.id for r in topo.regions]
    deps = [d.id for d in topo.dependencies]
    groups = [g.id for d in topo.datacenters for g in d.servers]
    server_counts = {g.id: g.count for d in topo.datacenters for g in d.servers}
    servers_by_dc = {d.id: sum(g.count for g in d.servers) for d in topo.datacenters}
    for i, region in enumerate(topo.regions):
        for name in region.datacenters:
            if name not in dcs:
                path: tuple[str | int, ...] = ("topology", "regions", i, "datacenters", name)
                problems.append((path, _unknown("datacenter", name, dcs)))
    linked: dict[frozenset[str], int] = {}
    for i, link in enumerate(topo.links):
        for j, name in enumerate(link.between):
            if name not in dcs:
                problems.append((("topology", "links", i, "between", j), _unknown("datacenter", name, dcs)))
        pair = frozenset(link.between)
        if len(pair) == 1:
            problems.append(
                (
                    ("topology", "links", i, "between"),
                    f"a link joins two different datacenters (got '{link.between[0]}' twice)",
                )
            )
        elif pair in linked:
            problems.append(
                (
                    ("topology", "links", i, "between"),
                    f"'{link.between[0]}' and '{link.between[1]}' are already linked by "
                    f"topology.links[{linked[pair]}]",
                )
            )
        else:
            linked[pair] = i
    for i, db in enumerate(topo.databases):
        for j, name in enumerate(db.regions):
            if name not in regions:
                path = ("topology", "databases", i, "regions", j)
                problems.append((path, _unknown("region", name, regions)))
        for j, place in enumerate(db.placement):
            path = ("topology", "databases", i, "placement", j)
            if place.datacenter not in dcs:
                problems.append(((*path, "datacenter"), _unknown("datacenter", place.datacenter, dcs)))
            elif place.copies > servers_by_dc[place.datacenter]:
                problems.append(
                    (
                        (*path, "copies"),
                        f"{place.copies} copies do not fit on the {servers_by_dc[place.datacenter]} servers "
                        f"of '{place.datacenter}' (at most one copy of a database per server)",
                    )
                )
        placed = [p.datacenter for p in db.placement]
        problems += (
            (("topology", "databases", i, "placement", j, "datacenter"), f"datacenter '{name}' listed twice")
            for j, name in enumerate(placed)
            if name in placed[:j]
        )
    for name in s.workload.regions:
        if name not in regions:
            problems.append((("workload", "regions", name), _unknown("region", name, regions)))
    for name, req in s.workload.requests.items():
        for j, dep in enumerate(req.dependencies):
            if dep not in deps:
                path = ("workload", "requests", name, "dependencies", j)
                problems.append((path, _unknown("dependency", dep, deps)))
    for j, name in enumerate(s.policies.server.fallbacks):
        if name not in deps:
            problems.append((("policies", "server", "fallbacks", j), _unknown("dependency", name, deps)))
    bulkheads = s.policies.server.bulkheads
    for name in bulkheads:
        if name not in deps:
            problems.append((("policies", "server", "bulkheads", name), _unknown("dependency", name, deps)))
    for i, d in enumerate(topo.datacenters):
        for j, g in enumerate(d.servers):
            reserved = bulkhead_workers(g.workers, bulkheads)
            if bulkheads and g.workers - sum(reserved) < 1:
                problems.append((("policies", "server", "bulkheads"),
                                 f"server group '{g.id}' (topology.datacenters[{i}].servers[{j}]) has {g.workers} "
                                 f"workers: too few for bulkheads of {', '.join(map(str, reserved))} and a shared "
                                 "compartment of at least one"))
    for name in s.workload.mail.regions if s.workload.mail is not None else ():
        path = ("workload", "mail", "regions", name)
        if name not in regions:
            problems.append((path, _unknown("region", name, regions)))
        elif not any(not db.regions or name in db.regions for db in topo.databases):
            problems.append((path, f"no mailbox database holds the users of region '{name}', so its mail "
                                   "has nowhere to go (expected a topology.databases group listing it)"))
    if s.policies.load_balancer.algorithm not in BALANCERS:
        problems.append(
            (
                ("policies", "load_balancer", "algorithm"),
                _unknown("load-balancer algorithm", s.policies.load_balancer.algorithm, list(BALANCERS)),
            )
        )
    backoffs = {
        ("policies", "client", "backoff"): s.policies.client.backoff,
        ("policies", "server", "dependency_backoff"): s.policies.server.dependency_backoff,
        ("policies", "load_balancer", "backoff"): s.policies.load_balancer.backoff,
    }
    for path, backoff in backoffs.items():
        if backoff.jitter not in JITTERS:
            problems.append(((*path, "jitter"), _unknown("jitter", backoff.jitter, list(JITTERS))))
    known = {"datacenter": dcs, "dependency": deps, "region": regions}
    for i, fault in enumerate(s.faults):
        target = fault.target
        for j, name in enumerate(target.datacenters):
            if name not in dcs:
                path = ("faults", i, "target", "datacenters", j)
                problems.append((path, _unknown("datacenter", name, dcs)))
        for j, name in enumerate(target.groups):
            if name not in groups:
                path = ("faults", i, "target", "groups", j)
                problems.append((path, _unknown("server group", name, groups)))
        what = FAULT_KINDS[fault.kind].targets
        if what == "link":
            problems += _link_target(i, target, topo.links, dcs)
        for j, name in enumerate(target.ids if what != "link" else ()):
            path = ("faults", i, "target", "ids", j)
            if what == "server":
                if _numbered(name, server_counts, 2) is None:
                    problems.append((path, _unknown_server(name, server_counts)))
            elif name not in known[what]:
                problems.append((path, _unknown(what, name, known[what])))
        for where, what, name in fault.references():
            if name not in known[what]:
                problems.append((("faults", i, *where), _unknown(what, name, known[what])))
        if fault.at is not None and fault.at >= s.duration:
            problems.append(
                (
                    ("faults", i, "at"),
                    f"starts after the run ends (got {format_duration(fault.at)}, expected less than the "
                    f"scenario's duration, {format_duration(s.duration)})",
                )
            )
    fault_ids = [s.fault_id(i) for i in range(len(s.faults))]
    problems += _duplicates(fault_ids, ("faults",), "fault")
    problems += check_sizes(s)
    return problems


def _fault_events(s: Scenario) -> dict[int, float]:
    """Expected starts and ends of each random fault (``mtbf``/``mttr``) over the run, per fault index.

    Each target fails about ``duration / (mtbf + mttr)`` times (fewer when it waits for a repair crew: an
    upper bound); the targets are counted from the filters
    without listing them (at most the entities of the kind the fault targets; ``ids`` count as given).
    """
    topo = s.topology
    servers = {g.id: (d.id, g.count) for d in topo.datacenters for g in d.servers}
    totals = {
        "datacenter": len(topo.datacenters),
        "dependency": len(topo.dependencies),
        "region": len(topo.regions),
        "link": 1,
    }
    out: dict[int, float] = {}
    for i, fault in enumerate(s.faults):
        if fault.mtbf is None or fault.mttr is None or fault.mtbf + fault.mttr <= 0:
            continue
        target, kind = fault.target, FAULT_KINDS[fault.kind].targets
        if kind == "server":
            if target.ids:
                count = len(target.ids)
            else:
                count = sum(
                    n
                    for g, (dc, n) in servers.items()
                    if (not target.groups or g in target.groups)
                    and (not target.datacenters or dc in target.datacenters)
                )
        else:
            count = len(set(target.ids) | set(target.datacenters)) or totals[kind]
        mode = target.mode
        if mode.kind == "one":
            count = min(count, 1)
        elif mode.kind == "count":
            count = min(count, int(mode.value))
        elif mode.kind == "percent":
            count = min(count, max(1, round(mode.value * count)))
        out[i] = 2.0 * count * s.duration / (fault.mtbf + fault.mttr)
    return out


def _link_target(i: int, target: Target, links: list[Link], dcs: list[str]) -> list[FieldProblem]:
    """Check a link fault's target: its two ends, ``target: {datacenters: [a, b]}``, and nothing else."""
    path: tuple[str | int, ...] = ("faults", i, "target")
    problems: list[FieldProblem] = [
        ((*path, field), f"a link is selected by its two ends only, target.datacenters: [a, b] (got {field})")
        for field in ("ids", "groups", "labels")
        if getattr(target, field)
    ]
    ends = target.datacenters
    if len(ends) != 2 or ends[0] == ends[1]:
        got = f"{len(ends)}: {', '.join(ends)}" if ends else "none"
        problems.append(
            ((*path, "datacenters"), f"expected the two different datacenters the link joins (got {got})")
        )
        return problems
    if any(name not in dcs for name in ends):
        return problems  # already reported, with a did-you-mean
    names = {frozenset(link.between): link_name(*link.between) for link in links}
    if frozenset(ends) not in names:
        known = sorted(names.values())
        close = difflib.get_close_matches(link_name(*ends), known, n=1, cutoff=0.6)
        hint = f" (did you mean [{', '.join(close[0].split('~'))}]?)" if close else ""
        problems.append(
            (
                (*path, "datacenters"),
                f"no link between '{ends[0]}' and '{ends[1]}' in topology.links{hint}; "
                f"links: {', '.join(known) or 'none'}",
            )
        )
    return problems


def check_sizes(s: Scenario) -> list[FieldProblem]:
    """Return every size of ``s`` over its ``limits``: servers, databases, workers, the request engine's
    tries, mail messages, random fault events, how long the run drains, the flow engine's retry ring.

    Computed from the counts in the file (:mod:`sim.sizing`), never by listing servers or requests.
    """
    topo, limits = s.topology, s.limits
    problems: list[FieldProblem] = []
    servers = sum(g.slots for d in topo.datacenters for g in d.servers)  # with the autoscalers' spares
    if servers > limits.max_servers:
        problems.append(
            (
                ("topology", "datacenters"),
                f"too many servers for one run (got {servers:,}, expected at most limits.max_servers = "
                f"{limits.max_servers:,})",
            )
        )
    databases = sum(db.count for db in topo.databases)
    if databases > limits.max_databases:
        problems.append(
            (
                ("topology", "databases"),
                f"too many databases for one run (got {databases:,}, expected at most limits.max_databases = "
                f"{limits.max_databases:,})",
            )
        )
    workers = total_workers(topo)
    if s.engine == "requests" and workers > limits.max_workers and servers <= limits.max_servers:
        problems.append(
            (
                ("topology", "datacenters"),
                f"too many workers for the request engine (got {workers:,} over all servers and dependencies, "
                f"expected at most limits.max_workers = {limits.max_workers:,}); use engine: flow or fewer "
                "workers",
            )
        )
    if s.engine == "requests":
        problems += _request_problems(s)
    mail = s.workload.mail
    messages = sum(m.rate for m in mail.regions.values()) * s.duration if mail is not None else 0.0
    if messages > limits.max_requests:
        problems.append(
            (
                ("workload", "mail", "regions"),
                f"too many mail messages to simulate in memory (got about {messages:.3g} over "
                f"{format_duration(s.duration)}, expected at most limits.max_requests = "
                f"{limits.max_requests:.3g}); shorten duration or lower the rates",
            )
        )
    events = _fault_events(s)
    if sum(events.values()) > limits.max_fault_events:
        i = max(events, key=lambda k: events[k])
        problems.append(
            (
                ("faults", i, "mtbf"),
                f"random faults start and end too often for one run (got about {sum(events.values()):.3g} "
                f"times over {format_duration(s.duration)}, {events[i]:.3g} of them this fault's; expected at "
                f"most limits.max_fault_events = {limits.max_fault_events:.3g}); use a longer mtbf or mttr, "
                "or fewer targets",
            )
        )
    drain = _drain_problems(s)
    problems += drain
    if s.engine == "flow":
        unsupported = unsupported_on_flow(s)  # a registered policy with no fluid view
        problems += unsupported
        if not drain and not unsupported:  # the ring needs every policy's fluid view
            problems += _ring_problems(s)
    return problems


def _ring_problems(s: Scenario) -> list[FieldProblem]:
    """The flow engine holds pending client retries per step ahead and per window of origin."""
    from sim.engine.flow import RING_CELLS, retry_ring  # the flow engine loads only to check a flow scenario

    client = s.policies.client
    step = s.flow.step
    slots, origins = retry_ring(client, step, max(step, s.flow.max_step), s.slo.window)
    regions, retries = len(s.topology.regions), max(client.retries, 1)
    types = len(s.workload.requests)  # a retry keeps its request's type
    cells = slots * regions * types * retries * origins
    if cells <= RING_CELLS:
        return []
    return [
        (
            ("policies", "client", "backoff"),
            f"the flow engine cannot hold the client retries this backoff leaves pending (got {cells:,} cells: "
            f"{slots:,} steps of {format_duration(step)} ahead × {origins:,} windows of "
            f"{format_duration(s.slo.window)} × {regions} region{'s' if regions != 1 else ''} × "
            + (f"{types} request types × " if types > 1 else "")
            + f"{retries} retr{'ies' if retries != 1 else 'y'}; expected at most "
            f"{RING_CELLS:,}); use a shorter backoff, or a longer flow.step or slo.window",
        )
    ]


def _request_problems(s: Scenario) -> list[FieldProblem]:
    """The request engine simulates every try: their worst-case count must fit ``limits.max_requests``."""
    load, limit = expected_load(s), s.limits.max_requests
    if load.tries <= limit:
        return []
    tries = load.amplification

    def got(users: float, part: str = "") -> str:
        text = f"{users:.3g} user requests over {format_duration(s.duration)}{part}"
        return f"got about {users * tries:.3g} tries: {text}, each tried up to {tries:.3g} times" if tries > 1 else (
            f"got about {text}"
        )

    expected = f"expected at most limits.max_requests = {limit:.3g}"
    if load.base * tries > limit or not load.surges:
        what = "requests" if tries > 1 else "user requests"
        return [
            (
                ("workload",),
                f"too many {what} to simulate in memory ({got(load.base)}; {expected}); use engine: flow, "
                "shorten duration or lower the peak",
            )
        ]
    i = max(load.surges, key=lambda k: load.surges[k])
    return [
        (
            ("faults", i, "multiplier"),
            f"the traffic surge '{s.fault_id(i)}' makes too many requests to simulate in memory "
            f"({got(load.users, f', {load.surges[i]:.3g} of them from this surge')}; {expected}); "
            "use engine: flow, a smaller multiplier or a shorter surge",
        )
    ]


def _drain_problems(s: Scenario) -> list[FieldProblem]:
    """After its duration a run goes on until the requests under way are finished: that must be bounded."""
    client, limit = s.policies.client, s.limits.max_drain
    drain = client.drain_time()
    if drain <= limit:
        return []
    longest = ("backoff", "max") if client.backoff.max >= client.timeout else ("timeout",)
    return [
        (
            ("policies", "client", *longest),
            f"requests could be under way for too long after the run (got {format_duration(drain)}: "
            f"(retries + 1) × (timeout + backoff.max) + 1s = {client.retries + 1} × "
            f"({format_duration(client.timeout)} + {format_duration(client.backoff.max)}) + 1s; expected at "
            f"most limits.max_drain = {format_duration(limit)}); lower the client's backoff.max, timeout or retries",
        )
    ]
