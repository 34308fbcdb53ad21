"""Operating the service: processes under make run, file modes, what the logs hold."""
