"""Jobs from make_queue are saved without zlib, and plain RQ still reads them (workers, dashboard, crawlers)."""

from __future__ import annotations

import fakeredis
from rq.job import Job
from rq.serializers import JSONSerializer

from shared.contract import OcrJob
from shared.queue import enqueue_read, make_queue
from shared.settings import Settings

IMAGE = "iVBORw0KGgo" + "A" * 400


def test_job_data_is_stored_as_plain_json_and_read_back_by_rq() -> None:
    connection = fakeredis.FakeRedis()
    settings = Settings(redis_url="redis://unused:6379/0")
    queue = make_queue(connection, settings)
    job = enqueue_read(queue, OcrJob(image_base64=IMAGE, digits=5), settings)
    stored = connection.hget(job.key, "data")
    assert stored is not None and stored.startswith(b'["worker.jobs.read_captcha"')
    plain = Job.fetch(job.id, connection=connection, serializer=JSONSerializer)  # RQ's own class
    assert plain.func_name == "worker.jobs.read_captcha"
    assert plain.kwargs == {"image_base64": IMAGE, "digits": 5}
    assert queue.get_job_ids() == [job.id]


def test_saving_again_keeps_the_job_readable() -> None:
    connection = fakeredis.FakeRedis()
    settings = Settings(redis_url="redis://unused:6379/0")
    job = enqueue_read(make_queue(connection, settings), OcrJob(image_base64=IMAGE), settings)
    job.meta["seen"] = True
    job.save()
    again = Job.fetch(job.id, connection=connection, serializer=JSONSerializer)
    assert again.kwargs["image_base64"] == IMAGE and again.meta == {"seen": True}
