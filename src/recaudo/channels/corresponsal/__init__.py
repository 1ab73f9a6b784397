"""The correspondent-banking check-collection contract (`/collections-management/v1/collection`)."""
