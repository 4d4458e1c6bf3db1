"""The worker process, as a pipeline: ``__main__`` starts it and loads the models -> ``rq_worker``, the
RQ worker class, decides which jobs run -> ``jobs``, the job functions crawlers enqueue by name ->
``answering`` decodes and checks the image and applies the confidence threshold -> ``recognizer`` finds
the models' most probable string -> ``normalise`` (the views models see) and ``ctc`` (decoding their
output). How the worker class bends RQ's own machinery is shared/rq_internals.py's."""
