"""`make bench`: throughput, CPU and latency of WikiPulse against the limit and its peers."""
