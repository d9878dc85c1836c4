"""The flow engine: traffic moves as rates, vectorised over servers, per time step.

Faults, health checks, failovers, rollouts and detectors stay discrete events on the same SimPy loop
(they are shared with the request engine); only how traffic moves differs. Per step of ``dt``
seconds, for every region: the offered load plus the client retries that come due make client
attempts; the attempts go to the region's datacenter, where the load balancers spread their tries
over the pool; each try runs the front end, the dependency calls and the mailbox server holding the
active copy of the user's database, and crosses a link when those two are in different
datacenters. Every server is a fluid queue:

- its backlog (worker-seconds of work waiting) grows by the work admitted in the step and shrinks by
  its capacity (``workers`` seconds per second while up); a new try waits ``backlog / workers``;
- on top of that fluid wait, the stationary M/M/c wait at the server's current utilisation (Erlang C)
  gives the spread of waits below saturation (above it, while the backlog grows, the wait at the load
  mirrored about the capacity: a growing queue's lead on its fluid path), so latency percentiles and
  the share of tries past their timeout come out of the queue state;
- a full queue (``queue_limit``) refuses the share of the step's work beyond its room, and with
  ``max_queue_wait`` the stationary queue is M/M/c+D (those who would wait too long are refused, the
  waits of the others are cut); with deadline propagation the backlog never holds more than its callers
  would wait for;
- the latency of a success is the law of its response given that it beat its deadline.

Outcomes of the step use the state at its start (explicit Euler). Load-balancer and dependency
retries are settled within the step; their load comes when their backoff ends (a delay buffer,
unless the backoff is short against the step, when it loads the servers in the same step); client
retries wait in a delay buffer per region and attempt number, spread over their backoff's jitter,
and come back as attempts when due. So retry storms, metastability, failover overload and
congestion emerge here as they do in the request engine. See docs/design.md for the approximations
and their limits.

The engine integrates lazily: its clock ``t`` trails the simulation clock; before the cluster
changes (``Cluster.before_change``) and at each step it catches up with the state as it was, then
reads the new state. Steps grow up to ``flow.max_step`` while nothing is queued or pending, and never
cross a metrics window.

One module per concept:

- ``engine.py``: :class:`FlowEngine` — its life, the listener calls, the answers to the control plane;
- ``clock.py``: lazy integration, adaptive steps, when the engine is quiet or settled;
- ``step.py``: one step as a pipeline of named stages with named results;
- ``tries.py``: the tries of a step — routing, outcomes, load-balancer retries, loads, latency;
  ``elsewhere.py``: where a load balancer's retry goes in a region without databases;
- ``servers.py``: servers as fluid queues (state, waits, the queue update); ``classes.py``: lumping
  servers in the same state;
- ``databases.py``: (region, server) pairs and the databases that point at them;
- ``dependencies.py``: dependencies and links; ``retries.py``: the client-retry ring; ``delays.py``:
  the load of load-balancer and dependency retries waiting out their backoff; ``deferrals.py``: which
  part of a step's loads its retries send after a backoff, and what of it leaves the step;
- ``checks.py``: health checks' answers, as alike from one check to the next as a real queue's;
- ``crashes.py``: memory crashes; ``records.py``: counters, the latency histogram, the Recorder.
"""

from sim.engine.flow.engine import FlowEngine
from sim.engine.flow.records import round_rows
from sim.engine.flow.retries import QUIET_RETRIES, RING_CELLS, retry_ring

__all__ = ["FlowEngine", "QUIET_RETRIES", "RING_CELLS", "retry_ring", "round_rows"]
