"""The exec wrapper of a confined agent turn: it confines itself, then becomes the agent.

A confined turn starts as ``python -I -S .../_confine/__main__.py FD`` (the argv that
``podd.sandbox.prepare`` builds, with ``WRAPPER``), by path, where FD is an inherited
descriptor holding the whole configuration. It uses only the standard library and
imports nothing of ``podd`` (nor does anything in ``podd`` import it). ``__main__``
stands in for this package without running this file, so nothing may be added here but
this docstring.

    __main__     the start-up: registers the package, runs ``wrapper.main``
    wrapper      the course of a run: read, confine, exec ``/bin/sh -c COMMAND``
    config       the configuration, a ``marshal``led dict, and its checks
    failure      ``ConfinementFailed``, and the exit status 126
    mounts_only  the confinement by mounts alone, for an agent's own sandbox
    namespaces   entering mount and user namespaces, and locking their mounts
    syscalls     the system calls, through ``ctypes``
    mounts       the mount table and mount flags (``mountinfo``, ``statvfs``)

On any failure it writes one line, ``podd: confinement failed: WHAT (STRERROR)``, to
stderr and to the status pipe, and exits with status 126: the command never runs
unconfined.
"""
