"""Asking a pod something over its socket: one call logic, two faces.

core          one request, one reply, failures translated once (no I/O)
sync          blocking sockets, for the command line
asynchronous  trio, for pods talking to their parent, children and ancestors
"""
