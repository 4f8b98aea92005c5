"""Pure init/apply functions of the networks trained from small initialisation (issue #3)."""
