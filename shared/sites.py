"""What the service knows about each site, kept in Redis: its labelled samples, its model, its training.

Everything lives in Redis (no shared disk): a trainer or a worker on another machine reads the same
samples and models, and Redis's persistence keeps them across restarts. Per site:

- ``samples``: a stream of labelled captchas (the image file's bytes, the text, the source: an upload,
  feedback on an answer, or the service's own sure answer), capped at ``site_max_samples`` (oldest out);
- ``digests``: the SHA-1 of each sample's image -> its stream id, so that an image is kept once;
- ``counts``: samples held by source, and how many were ever added (to tell when a retrain is due);
- ``model``: the promoted model (ONNX bytes), its version and what it was measured to do;
- ``state``: ``idle | queued | running | failed`` and the reason of a failure.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple
from urllib.parse import urlsplit

from redis import Redis

SITE_PATTERN = r"^[A-Za-z0-9._:-]{1,100}$"
SITES_KEY = "captchaocr:sites"
TRAIN_REQUESTS_KEY = "captchaocr:sites:train-requests"
# Each site's last model version, kept when the site is deleted: a worker swaps a site's model only
# when its version changes, so a version must never be given twice to one site name.
MODEL_VERSIONS_KEY = "captchaocr:sites:model-versions"
SOURCES = ("upload", "feedback", "self")
Source = Literal["upload", "feedback", "self"]
TrainingState = Literal["idle", "queued", "running", "failed"]
# A site's keys are captchaocr:site:{site}:{part}, one per part.
PARTS = ("samples", "digests", "counts", "model", "state", "lease")

# Adds one sample and drops the oldest past the cap, keeping the per-source counts exact: atomic, so
# several workers and API processes may add to one site at once. One sample per image (by its SHA-1), so
# that a captcha read twice neither counts twice nor lands on both sides of the trainer's held-back split:
# the service's own answer never replaces a kept one; a person's label (upload or feedback) replaces the
# service's, and another person's label when it differs (a correction). Returns {1 if added else 0, held}.
_ADD_SAMPLE = """
local function field(entry, name)
    local fields = entry[2]
    for i = 1, #fields, 2 do
        if fields[i] == name then return fields[i + 1] end
    end
end
local function forget(entry)
    redis.call('HINCRBY', KEYS[2], field(entry, 'source'), -1)
    redis.call('XDEL', KEYS[1], entry[1])
    local digest = redis.sha1hex(field(entry, 'image'))
    if redis.call('HGET', KEYS[4], digest) == entry[1] then redis.call('HDEL', KEYS[4], digest) end
end
redis.call('SADD', KEYS[3], ARGV[5])
local digest = redis.sha1hex(ARGV[1])
local known = redis.call('HGET', KEYS[4], digest)
if known then
    local entry = redis.call('XRANGE', KEYS[1], known, known)[1]
    if entry then
        if ARGV[3] == 'self' or (field(entry, 'source') ~= 'self' and field(entry, 'text') == ARGV[2]) then
            return {0, redis.call('XLEN', KEYS[1])}
        end
        forget(entry)
    end
end
local id = redis.call('XADD', KEYS[1], '*', 'image', ARGV[1], 'text', ARGV[2], 'source', ARGV[3])
redis.call('HSET', KEYS[4], digest, id)
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('HINCRBY', KEYS[2], 'added', 1)
local excess = redis.call('XLEN', KEYS[1]) - tonumber(ARGV[4])
if excess > 0 then
    for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess)) do forget(entry) end
end
return {1, redis.call('XLEN', KEYS[1])}
"""


def valid_site(site: str) -> bool:
    return re.fullmatch(SITE_PATTERN, site) is not None


def site_of(site: str | None, url: str | None) -> str | None:
    """The site a protocol task names: its own ``site`` field when valid, else the host of the page's
    URL (``https://Shop.example:8443/login`` -> ``shop.example``); None when neither names one, so such a
    task is read as before (the paid services ignore a URL they cannot use, and so do we)."""
    if site and valid_site(site):
        return site
    if not url:
        return None
    host = urlsplit(url if "//" in url else f"//{url}").hostname
    return host if host and valid_site(host) else None


def _key(site: str, part: str) -> str:
    return f"captchaocr:site:{site}:{part}"


@dataclass(frozen=True)
class Sample:
    """One labelled captcha of a site; ``id`` is its stream id (stable: it decides the held-back share)."""

    id: str
    image: bytes
    text: str
    source: Source


class Kept(NamedTuple):
    """What adding a sample did: whether it was added (not held already) and the samples held now."""

    added: bool
    samples: int


@dataclass
class SiteModel:
    """A promoted model: the ONNX file and what the trainer measured (``meta``)."""

    version: int
    onnx: bytes
    meta: dict[str, Any] = field(default_factory=dict)


class SiteStore:
    """Reads and writes one Redis's site data; every process makes its own from its connection."""

    def __init__(self, redis: Redis, max_samples: int) -> None:
        self.redis = redis
        self.max_samples = max_samples
        self._add = redis.register_script(_ADD_SAMPLE)

    def add_sample(self, site: str, image: bytes, text: str, source: Source) -> Kept:
        """Keep one labelled captcha, unless the site holds that image already (see ``_ADD_SAMPLE``)."""
        keys = [_key(site, "samples"), _key(site, "counts"), SITES_KEY, _key(site, "digests")]
        added, samples = self._add(keys=keys, args=[image, text, source, self.max_samples, site])
        return Kept(bool(added), int(samples))

    def samples(self, site: str) -> list[Sample]:
        entries = self.redis.xrange(_key(site, "samples"))
        return [Sample(entry_id.decode(), fields[b"image"], fields[b"text"].decode(), fields[b"source"].decode())
                for entry_id, fields in entries]

    def counts(self, site: str) -> dict[str, int]:
        raw = {k.decode(): int(v) for k, v in self.redis.hgetall(_key(site, "counts")).items()}
        return {"added": raw.get("added", 0), **{source: raw.get(source, 0) for source in SOURCES}}

    def sample_count(self, site: str) -> int:
        return int(self.redis.xlen(_key(site, "samples")))

    def sites(self) -> list[str]:
        return sorted(member.decode() for member in self.redis.smembers(SITES_KEY))

    def exists(self, site: str) -> bool:
        return bool(self.redis.sismember(SITES_KEY, site))

    def delete(self, site: str) -> bool:
        """Forget the site: samples, model and state. True when there was something to forget."""
        with self.redis.pipeline() as pipe:
            pipe.srem(SITES_KEY, site)
            pipe.delete(*(_key(site, part) for part in PARTS))
            pipe.lrem(TRAIN_REQUESTS_KEY, 0, site)
            removed = pipe.execute()
        return bool(removed[0] or removed[1])

    # The model

    def model_version(self, site: str) -> int:
        """0 when the site has no model: one small read, which workers repeat to notice a new model."""
        return int(self.redis.hget(_key(site, "model"), "version") or 0)

    def model(self, site: str) -> SiteModel | None:
        raw = self.redis.hgetall(_key(site, "model"))
        if not raw:
            return None
        return SiteModel(int(raw[b"version"]), raw[b"onnx"], json.loads(raw[b"meta"]))

    def model_meta(self, site: str) -> tuple[int, dict[str, Any]] | None:
        """The model's version and metadata without its bytes (for status pages)."""
        version, meta = self.redis.hmget(_key(site, "model"), ["version", "meta"])
        return (int(version), json.loads(meta)) if version else None

    def promote(self, site: str, onnx: bytes, meta: dict[str, Any]) -> int:
        """Make ``onnx`` the site's model; returns its version, above any this site name had before, deleted
        or not (a site's models are promoted by one trainer at a time: it holds the site's lease)."""
        version = max(self.redis.hincrby(MODEL_VERSIONS_KEY, site, 1), self.model_version(site) + 1)
        with self.redis.pipeline() as pipe:
            pipe.hset(MODEL_VERSIONS_KEY, site, version)
            pipe.hset(_key(site, "model"), mapping={"version": version, "onnx": onnx, "meta": json.dumps(meta)})
            pipe.execute()
        return version

    # Training state

    def state(self, site: str) -> dict[str, Any]:
        raw = {k.decode(): v.decode() for k, v in self.redis.hgetall(_key(site, "state")).items()}
        return {"training": raw.get("training", "idle"), "error": raw.get("error") or None,
                "trained_added": int(raw.get("trained_added", 0)),
                "last_training": json.loads(raw["last"]) if raw.get("last") else None}

    def set_state(self, site: str, training: TrainingState, error: str | None = None, **extra: Any) -> None:
        mapping = {"training": training, "error": error or "", "changed_at": time.time(), **extra}
        self.redis.hset(_key(site, "state"), mapping=mapping)

    def request_training(self, site: str) -> None:
        """Queue the site for the trainer (once, however often it is asked)."""
        self.set_state(site, "queued")
        with self.redis.pipeline() as pipe:
            pipe.lrem(TRAIN_REQUESTS_KEY, 0, site)
            pipe.rpush(TRAIN_REQUESTS_KEY, site)
            pipe.execute()

    def next_requested(self, timeout_s: float) -> str | None:
        """The next site someone asked to train, waiting up to ``timeout_s``."""
        popped = self.redis.blpop([TRAIN_REQUESTS_KEY], timeout=timeout_s)
        return popped[1].decode() if popped else None

    def take_lease(self, site: str, owner: str, ttl_s: int) -> bool:
        """One trainer per site at a time; the lease expires if its trainer dies."""
        return bool(self.redis.set(_key(site, "lease"), owner, nx=True, ex=ttl_s))

    def renew_lease(self, site: str, ttl_s: int) -> None:
        self.redis.expire(_key(site, "lease"), ttl_s)

    def release_lease(self, site: str) -> None:
        self.redis.delete(_key(site, "lease"))

    def leased(self, site: str) -> bool:
        return bool(self.redis.exists(_key(site, "lease")))
