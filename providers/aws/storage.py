"""S3 objects for billing ingestion: list a prefix, stream objects into a local folder.

Billing exports land in S3 (CUR 1.0/2.0, FOCUS exports). The reader works on local files, so each
object is downloaded in 1 MiB chunks (never held whole in memory) to a temporary folder. Everything
goes through ``AwsClients``: the standard credential chain, ``AWS_ENDPOINT_URL``, retries and call
counting apply, and SDK errors arrive as ``providers.errors``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from providers.aws.client import AwsClients, pages, translated
from providers.errors import ConfigurationError, NotFound
from providers.object_paths import listing_prefix, local_path, wanted

log = logging.getLogger(__name__)

CHUNK = 1 << 20
DEFAULT_REGION = "us-east-1"  # S3 redirects a client to a bucket's own region


@dataclass(frozen=True, slots=True)
class S3Object:
    bucket: str
    key: str
    size: int

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def parse_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> (``bucket``, ``some/prefix``)."""
    if not url.startswith("s3://"):
        raise ConfigurationError(f"not an s3:// URL: {url}")
    bucket, _, key = url[len("s3://"):].partition("/")
    if not bucket:
        raise ConfigurationError(f"no bucket in {url}", hint="write s3://bucket/prefix")
    return bucket, key


def _region(clients: AwsClients) -> str:
    return clients.default_region() or DEFAULT_REGION


def list_objects(clients: AwsClients, url: str, suffixes: tuple[str, ...] = ()) -> list[S3Object]:
    """The objects under a URL, sorted by key.

    The URL names one object, a prefix (every object below it whose name ends with one of
    ``suffixes``, when given) or a glob (``s3://b/cur/*/part-*.parquet``: listed from the part
    before the first wildcard, matched with ``fnmatch``): ``providers.object_paths``.
    """
    bucket, key = parse_url(url)
    prefix = listing_prefix(key)
    region = _region(clients)
    client = clients.client("s3", region)
    found: list[S3Object] = []
    for page in pages(client, "ListObjectsV2", region, Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            name = str(item["Key"])
            if wanted(name, key, suffixes):
                found.append(S3Object(bucket, name, int(item.get("Size", 0))))
    if not found:
        raise NotFound(f"aws s3: nothing found at {url}", hint="check the bucket, the prefix and the region")
    return sorted(found, key=lambda o: o.key)


def download_object(clients: AwsClients, obj: S3Object, folder: Path) -> Path:
    """Stream one object to ``folder/<bucket>/<key>`` (its name kept: the extension tells gzip)."""
    target = local_path(folder, obj.bucket, obj.key)
    region = _region(clients)
    with translated("s3", "GetObject", region):
        response = clients.client("s3", region).get_object(Bucket=obj.bucket, Key=obj.key)
        body = response["Body"]
        try:
            with open(target, "wb") as out:
                out.writelines(body.iter_chunks(CHUNK))
        finally:
            body.close()
    log.debug("s3 download url=%s bytes=%d", obj.url, target.stat().st_size)
    return target
