"""The pod process at run time: the shell around ``podd.core.machine``.

    main           the pod process: lock, restore, bind, run the loop, clean up
    launch         becoming a pod in a process forked by the command line
    loop           PodCore: the dispatch loop, the state, ``apply``, the journal
    pod            Pod: the parts below as fields; ``run_effects``
    events         Events: ``pod_event``, ``flush_events``
    children       Children: spawning, watching and restarting children
    turns          Turns: slots, the processes of turns, ``send``/``wait``/``deps``/``slot``
    liveness       Liveness: probes, reclaims, parent death, adoption
    stop           Stopper: the waiting of each phase of a stop; signals
    status         the ``ping`` and ``status`` replies
    registry_file  the registry file, written off the loop
    diagnostics    the loop's lag figures; the event trace hook
    probe          is a registered pod alive: process, start time, a ping
    server         the Unix-socket server: frames in, replies out
    outbox         events upward, never blocking the pod
    event_feed     the last events, streamed to subscribers
    slots          --max-running leases
    turn_runner    one work item: iterations through the driver, then the gate
    turn_process   one confined process of a turn, in its own process group

The rules are ``podd.core``'s (``handle(state, input, now) -> effects``); this package
turns what happens into inputs and carries out the effects.
"""
