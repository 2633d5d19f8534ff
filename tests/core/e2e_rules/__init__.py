"""Table tests of ``podd.core.machine.handle`` for every rule an end-to-end test checks:
one module per file of ``tests/e2e``, and the accounting that holds them to it."""
