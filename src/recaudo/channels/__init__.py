"""External channel contracts: each sub-package translates one contract to service calls."""
