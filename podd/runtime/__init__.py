"""The pod process at run time: its dispatch loop and state, the concerns built on it,
its socket server and outbox, and the running of its agent's turns.

    main          the pod process: lock, restore, bind, run the loop, clean up
    launch        becoming a pod in a process forked by the command line
    loop          PodCore: the dispatch loop, the state it owns, the shared requests
    pod           Pod: the loop and its concerns put together
    events        events from below: authorize, apply, pass up
    children      spawning, reclaiming and restarting children
    turns         the agent's work items: queue, prerequisites, slots, records
    liveness      probes, parent death, adoption
    probe         is a registered pod alive: process, start time, a ping
    stop          stopping, children first
    server        the Unix-socket server: frames in, replies out
    outbox        events upward, never blocking the pod
    event_feed    the last events, streamed to subscribers
    slots         --max-running leases
    turn_runner   one work item: iterations through the driver, then the gate
    turn_process  one confined process of a turn, in its own process group

The rules these follow are pure functions in ``podd.core``; this package runs their
effects.
"""
