"""The pod's logic as pure functions over its state: inputs in, effects out.

Nothing here performs I/O, imports trio or reads a clock. A handler takes the part of
the pod's state it rules and an input (a request's params and the peer's pid, an
event), changes that state, and returns the effects that follow (``podd.core.effects``:
a reply, an event to send upward, a notification, a registry to persist). A refusal is
raised as the ``protocol`` error it answers with, and changes nothing. The runtime
(``podd.pod_*``) owns the state's only copy, calls the handlers from its dispatch loop
and carries out the effects, so every rule here is a table test without an event loop.

The event plane (``events``: authorizing, de-duplicating and applying PodEvents,
tombstones of removed pods, acknowledgements) is here; the other concerns of a pod move
here one by one.
"""
