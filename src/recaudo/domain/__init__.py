"""Pure business rules. Imports only the standard library and python-stdnum."""
