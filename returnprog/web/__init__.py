"""The web layer: blueprints that parse input, call a service and map its errors."""
