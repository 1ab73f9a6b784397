"""The bank-style collections-management contract (issue 7): contract.py, routes.py."""
