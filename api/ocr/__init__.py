"""The ``POST /ocr`` path: the route, batches, the collector that groups requests into jobs, their
dispatch to the queue and the wait for their results."""
