"""Confinement of agent turns: Landlock, read-only binds for exclusions, or mounts alone.

    modes        how turns can be confined here, and what that loses, in one sentence
    prepare      ``prepare_confinement``: the ruleset and the configuration of one turn
    confinement  ``Confinement``: how to start the turn, the descriptors held for it
    ruleset      building the Landlock ruleset (the ``landlock`` package, on first use)
    _confine     the exec wrapper a confined turn starts as, run by path, imported by none

Nothing here imports an event loop: ``prepare_confinement`` opens the paths and builds
the ruleset synchronously, in the pod, before the turn is spawned.
"""

from podd.sandbox.confinement import Confinement
from podd.sandbox.modes import (
    EnforcementMode,
    enforcement_detail,
    enforcement_mode,
    mount_setattr_number,
    mounts_only_problem,
    namespace_problem,
)
from podd.sandbox.prepare import DEVICE_FILES, WRAPPER, prepare_confinement

__all__ = [
    "DEVICE_FILES",
    "WRAPPER",
    "Confinement",
    "EnforcementMode",
    "enforcement_detail",
    "enforcement_mode",
    "mount_setattr_number",
    "mounts_only_problem",
    "namespace_problem",
    "prepare_confinement",
]
