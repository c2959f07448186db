"""The operator commands of ``leasq`` (stats, queue, task, worker, schedule), over gRPC."""
