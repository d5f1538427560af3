"""The outbox: every mail takes this road (enqueue, worker, SMTP/file transport, progress)."""
