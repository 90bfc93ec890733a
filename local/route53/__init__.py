"""Route 53: ``global_endpoint`` answers the global names as the deployed latency records and
health checks would."""
