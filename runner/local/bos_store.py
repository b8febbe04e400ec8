"""The local platform's object store: BOS buckets and objects on disk, and ``bos:/bucket/key`` URIs.

Object bytes live in ``<home>/bos/blobs/<random name>``; which blob holds which key lives in a small SQLite
index (``<home>/bos/index.sqlite3``). Keys never become file paths, so any key BOS allows (``dir/`` folder
markers, ``a`` next to ``a/b``, 1024 bytes of UTF-8) is storable and none can escape the folder. A put
streams into a temporary file, renames it to a fresh blob, then swaps the index row in one transaction and
unlinks the old blob: a reader sees the old object or the new one, never a mix, and a crash leaves at most an
unreferenced file that the next start sweeps away.

The HTTP routes are in ``runner.local.bos``; batch inference and dataset imports call this module directly.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import sqlite3
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, NoReturn

from runner.local.home import Home
from runner.platform.settings import LOCAL_BOS_BUCKET

DEFAULT_BUCKET = LOCAL_BOS_BUCKET
# BOS's own ceiling for one PutObject is 5 GB (https://cloud.baidu.com/doc/BOS/s/Ikc5nv3wc).
MAX_OBJECT_BYTES = 5 * 1024**3
MAX_KEY_BYTES = 1024
MAX_LIST_KEYS = 1000
STANDARD = "STANDARD"
OCTET_STREAM = "application/octet-stream"
# Leftovers younger than this may belong to a put still under way in another thread or process.
SWEEP_AFTER_S = 600.0
CHUNK = 1 << 20

# BOS's bucket rule, as bce-python-sdk's bos_handler.validate_bucket_name enforces it.
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL REFERENCES buckets(name),
    key TEXT NOT NULL,
    blob TEXT NOT NULL,
    size INTEGER NOT NULL,
    md5 TEXT NOT NULL,
    crc32 INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    meta TEXT NOT NULL,  -- x-bce-meta-* as a JSON object
    modified_at REAL NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
"""


class BosError(Exception):
    """A refusal in BOS's terms: HTTP status, BOS error code (``NoSuchKey``, ...) and a full sentence."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def no_such_bucket(bucket: str) -> BosError:
    return BosError(404, "NoSuchBucket", f"The bucket {bucket!r} does not exist on this platform.")


def no_such_key(bucket: str, key: str) -> BosError:
    return BosError(404, "NoSuchKey", f"The object {key!r} does not exist in the bucket {bucket!r}.")


@dataclass(frozen=True)
class BosUri:
    """A ``bos:/bucket/key`` location; ``key`` is empty for a whole bucket and ends in ``/`` for a folder."""

    bucket: str
    key: str = ""

    def __str__(self) -> str:
        return f"bos:/{self.bucket}/{self.key}"

    @property
    def folder(self) -> str:
        """The key taken as a folder: ending in ``/``, or empty for the whole bucket."""
        return self.key if not self.key or self.key.endswith("/") else self.key + "/"

    def child(self, name: str) -> BosUri:
        """The location ``name`` under this one taken as a folder."""
        return BosUri(self.bucket, self.folder + name)


TASK_DIR_LENGTH = 24
_TASK_DIR_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def task_output_uri(output: BosUri) -> BosUri:
    """A fresh ``<outputBosUri>/<24 random characters>/`` folder for one task's results.

    Qianfan's batch inference writes each task's output into such a sub-directory of ``outputBosUri``
    (qianfan-official-api.md §2.1).
    """
    name = "".join(secrets.choice(_TASK_DIR_ALPHABET) for _ in range(TASK_DIR_LENGTH))
    return output.child(name + "/")


def parse_bos_uri(text: str) -> BosUri:
    """``bos:/bucket/path`` (Qianfan's form) or ``bos://bucket/path``, checked, as a ``BosUri``."""
    for scheme in ("bos://", "bos:/"):
        if text.startswith(scheme):
            rest = text[len(scheme) :]
            break
    else:
        raise BosError(400, "InvalidURI", f"{text!r} is not a BOS location; write bos:/bucket/path.")
    bucket, _, key = rest.partition("/")
    check_bucket_name(bucket, where=f"in {text!r}")
    if key:
        check_key(key, where=f"in {text!r}")
    return BosUri(bucket, key)


def check_bucket_name(bucket: str, *, where: str = "") -> str:
    if not _BUCKET_NAME.match(bucket):
        suffix = f" {where}" if where else ""
        raise BosError(
            400,
            "InvalidBucketName",
            f"The bucket name {bucket!r}{suffix} is not valid: use 3 to 63 lower-case letters, digits and "
            "hyphens, starting and ending with a letter or digit.",
        )
    return bucket


def check_key(key: str, *, where: str = "") -> str:
    """``key`` when BOS would store it; refuses empty, over-long, NUL, absolute and dot-segment keys."""
    suffix = f" {where}" if where else ""
    problem = ""
    if not key:
        problem = "is empty"
    elif "\0" in key:
        problem = "contains a NUL character"
    elif key.startswith("/"):
        problem = "starts with '/'"
    elif any(segment in (".", "..") for segment in key.split("/")):
        problem = "has a '.' or '..' path segment"
    elif len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        problem = f"is longer than {MAX_KEY_BYTES} bytes"
    if problem:
        raise BosError(400, "InvalidURI", f"The object key {key[:100]!r}{suffix} {problem}.")
    return key


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object as HEAD and list describe it."""

    bucket: str
    key: str
    size: int
    md5: str
    crc32: int
    content_type: str
    modified_at: float
    user_meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def etag(self) -> str:
        """The hex MD5 of the content, which is what BOS's ETag of a single-part object is."""
        return self.md5


@dataclass(frozen=True)
class BucketInfo:
    name: str
    created_at: float


@dataclass(frozen=True)
class Listing:
    """One page of a bucket listing, in BOS's terms."""

    bucket: str
    prefix: str
    delimiter: str
    marker: str
    max_keys: int
    contents: tuple[ObjectInfo, ...]
    common_prefixes: tuple[str, ...]
    is_truncated: bool
    next_marker: str


@dataclass(frozen=True)
class Condition:
    """A conditional put's preconditions, checked in the same transaction that publishes the object.

    ``if_match``: the ETag the object must have now (a compare-and-swap); ``if_none_match="*"``: there
    must be no object at the key yet (create-only). Either failing is BOS's 412 ``PreconditionFailed``.
    """

    if_match: str = ""
    if_none_match: str = ""

    def check(self, bucket: str, key: str, current_md5: str | None) -> None:
        wanted = self.if_match.strip().strip('"')
        if self.if_none_match.strip() == "*" and current_md5 is not None:
            raise precondition_failed(bucket, key, "it already exists (If-None-Match: *)")
        if wanted and current_md5 != wanted:
            now = "does not exist" if current_md5 is None else f"has the ETag {current_md5!r}"
            raise precondition_failed(bucket, key, f"it {now}, not {wanted!r} (If-Match)")


def precondition_failed(bucket: str, key: str, why: str) -> BosError:
    return BosError(
        412, "PreconditionFailed", f"The object {key!r} in the bucket {bucket!r} was not written: {why}."
    )


@dataclass(frozen=True)
class Digests:
    """Checksums a client declared for a put (``Content-MD5``, ``x-bce-content-sha256``/``-crc32``)."""

    md5_b64: str = ""
    sha256_hex: str = ""
    crc32: str = ""


def _meta_text(meta: Mapping[str, str]) -> str:
    return json.dumps(dict(meta), sort_keys=True, ensure_ascii=False)


def _meta_from(text: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in json.loads(text or "{}").items()}


class ObjectWriter:
    """Streams one object into a temporary file, enforcing the size limit as bytes arrive.

    ``commit`` checks the declared digests and publishes the object; leaving the ``with`` block without a
    commit (an error, a refused digest) removes the temporary file.
    """

    def __init__(
        self,
        store: ObjectStore,
        bucket: str,
        key: str,
        content_type: str,
        digests: Digests,
        user_meta: Mapping[str, str],
        condition: Condition,
    ) -> None:
        self._store = store
        self._condition = condition
        self._bucket = bucket
        self._key = key
        self._content_type = content_type or OCTET_STREAM
        self._digests = digests
        self._meta = dict(user_meta)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256() if digests.sha256_hex else None
        self._crc = 0
        self.size = 0
        fd, name = _temp_file(store.tmp_dir)
        self._tmp = Path(name)
        self._handle: BinaryIO = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._store.max_object_bytes:
            raise too_large(self.size, self._store.max_object_bytes, received=True)
        self._md5.update(chunk)
        if self._sha256 is not None:
            self._sha256.update(chunk)
        self._crc = zlib.crc32(chunk, self._crc)
        self._handle.write(chunk)

    def commit(self) -> ObjectInfo:
        self._check_digests()
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        info = ObjectInfo(
            self._bucket,
            self._key,
            self.size,
            self._md5.hexdigest(),
            self._crc,
            self._content_type,
            time.time(),
            self._meta,
        )
        self._store.publish(info, self._tmp, self._condition)
        return info

    def _check_digests(self) -> None:
        declared = self._digests
        if declared.md5_b64:
            try:
                wanted = base64.b64decode(declared.md5_b64, validate=True)
            except ValueError:
                wanted = b""
            if len(wanted) != 16:
                raise BosError(400, "BadDigest", "The Content-MD5 header is not the Base64 of an MD5 digest.")
            if wanted != self._md5.digest():
                raise BosError(
                    400, "BadDigest", "The Content-MD5 you sent does not match the bytes received."
                )
        if self._sha256 is not None and declared.sha256_hex.lower() != self._sha256.hexdigest():
            raise BosError(
                400, "BadDigest", "The x-bce-content-sha256 you sent does not match the bytes received."
            )
        if declared.crc32 and declared.crc32.strip() != str(self._crc):
            raise BosError(
                400, "BadDigest", "The x-bce-content-crc32 you sent does not match the bytes received."
            )

    def __enter__(self) -> ObjectWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._handle.closed:
            self._handle.close()
        self._tmp.unlink(missing_ok=True)


def too_large(size: int, limit: int, *, received: bool = False) -> BosError:
    what = "received more than" if received else "declares"
    amount = f"{limit} bytes" if received else f"{size} bytes"
    return BosError(
        400,
        "EntityTooLarge",
        f"The upload {what} {amount}; this platform stores objects of at most {limit} bytes.",
    )


def _temp_file(folder: Path) -> tuple[int, str]:
    name = folder / f"put-{uuid.uuid4().hex}"
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), str(name)


class ObjectStore:
    """Buckets and objects of one platform home; safe to share between threads and processes."""

    def __init__(self, root: Path, *, max_object_bytes: int = MAX_OBJECT_BYTES) -> None:
        self.root = root
        self.max_object_bytes = max_object_bytes

    @classmethod
    def for_home(cls, home: Home) -> ObjectStore:
        """The store of a platform home, ready to use (the server and task workers each make their own)."""
        return cls(home.bos_dir).ensure()

    @property
    def blobs_dir(self) -> Path:
        return self.root / "blobs"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite3"

    def ensure(self) -> ObjectStore:
        """Create the layout and the default bucket, and sweep what an interrupted put left behind."""
        for folder in (self.root, self.blobs_dir, self.tmp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        with self._read() as db:
            db.executescript(_SCHEMA)  # outside _write: executescript commits any open transaction first
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO buckets (name, created_at) VALUES (?, ?)",
                (DEFAULT_BUCKET, time.time()),
            )
        self._sweep()
        return self

    # -- buckets ---------------------------------------------------------------------------------------

    def create_bucket(self, bucket: str) -> BucketInfo:
        check_bucket_name(bucket)
        created = time.time()
        with self._write() as db:
            try:
                db.execute("INSERT INTO buckets (name, created_at) VALUES (?, ?)", (bucket, created))
            except sqlite3.IntegrityError:
                raise BosError(409, "BucketAlreadyExists", f"The bucket {bucket!r} already exists.") from None
        return BucketInfo(bucket, created)

    def buckets(self) -> list[BucketInfo]:
        with self._read() as db:
            rows = db.execute("SELECT name, created_at FROM buckets ORDER BY name").fetchall()
        return [BucketInfo(name, created) for name, created in rows]

    def bucket(self, bucket: str) -> BucketInfo:
        with self._read() as db:
            row = db.execute("SELECT name, created_at FROM buckets WHERE name = ?", (bucket,)).fetchone()
        if row is None:
            raise no_such_bucket(bucket)
        return BucketInfo(row[0], row[1])

    def delete_bucket(self, bucket: str) -> None:
        with self._write() as db:
            if db.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is None:
                raise no_such_bucket(bucket)
            if db.execute("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (bucket,)).fetchone():
                raise BosError(409, "BucketNotEmpty", f"The bucket {bucket!r} is not empty.")
            db.execute("DELETE FROM buckets WHERE name = ?", (bucket,))

    # -- objects ---------------------------------------------------------------------------------------

    def writer(
        self,
        bucket: str,
        key: str,
        *,
        content_type: str = OCTET_STREAM,
        digests: Digests | None = None,
        user_meta: Mapping[str, str] | None = None,
        declared_size: int | None = None,
        condition: Condition | None = None,
    ) -> ObjectWriter:
        """A writer for ``bucket``/``key`` (both checked, the bucket must exist) to stream bytes into."""
        check_key(key)
        self.bucket(bucket)
        if declared_size is not None and declared_size > self.max_object_bytes:
            raise too_large(declared_size, self.max_object_bytes)
        return ObjectWriter(
            self, bucket, key, content_type, digests or Digests(), user_meta or {}, condition or Condition()
        )

    def put(self, bucket: str, key: str, data: bytes, *, content_type: str = OCTET_STREAM) -> ObjectInfo:
        with self.writer(bucket, key, content_type=content_type, declared_size=len(data)) as writer:
            for start in range(0, len(data), CHUNK):
                writer.write(data[start : start + CHUNK])
            return writer.commit()

    def put_file(self, uri: BosUri, path: Path, *, content_type: str = OCTET_STREAM) -> ObjectInfo:
        """Copy a local file into the store at ``uri``, streaming."""
        with self.writer(uri.bucket, uri.key, content_type=content_type) as writer, path.open("rb") as src:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                writer.write(chunk)
            return writer.commit()

    def publish(self, info: ObjectInfo, tmp: Path, condition: Condition | None = None) -> None:
        """Make ``tmp`` the content of ``info``'s key (called by ``ObjectWriter.commit``); ``condition`` is
        checked against the object as it is inside the write transaction, so two conditional puts racing
        for one key cannot both succeed."""
        blob = uuid.uuid4().hex
        os.replace(tmp, self.blobs_dir / blob)
        with self._write() as db:
            if db.execute("SELECT 1 FROM buckets WHERE name = ?", (info.bucket,)).fetchone() is None:
                (self.blobs_dir / blob).unlink(missing_ok=True)
                raise no_such_bucket(info.bucket)
            old = db.execute(
                "SELECT blob, md5 FROM objects WHERE bucket = ? AND key = ?", (info.bucket, info.key)
            ).fetchone()
            if condition is not None:
                try:
                    condition.check(info.bucket, info.key, None if old is None else old[1])
                except BosError:
                    (self.blobs_dir / blob).unlink(missing_ok=True)
                    raise
            db.execute(
                "INSERT OR REPLACE INTO objects (bucket, key, blob, size, md5, crc32, content_type, meta, "
                "modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    info.bucket,
                    info.key,
                    blob,
                    info.size,
                    info.md5,
                    info.crc32,
                    info.content_type,
                    _meta_text(info.user_meta),
                    info.modified_at,
                ),
            )
        if old is not None:
            (self.blobs_dir / old[0]).unlink(missing_ok=True)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        info, _ = self._row(bucket, key)
        return info

    def open(self, bucket: str, key: str) -> tuple[ObjectInfo, BinaryIO]:
        """The object's description and an open handle on its bytes (the caller closes it).

        A put that replaces the object between the index read and the open unlinks the blob; reading the
        index again then finds the new one, so one retry is enough.
        """
        for _ in range(3):
            info, blob = self._row(bucket, key)
            try:
                return info, (self.blobs_dir / blob).open("rb")
            except FileNotFoundError:
                continue
        raise BosError(503, "ServiceUnavailable", f"The object {key!r} kept changing while being read.")

    def read(self, bucket: str, key: str) -> bytes:
        _, handle = self.open(bucket, key)
        with handle:
            return handle.read()

    def read_uri(self, uri: BosUri) -> bytes:
        return self.read(uri.bucket, uri.key)

    def delete(self, bucket: str, key: str) -> None:
        check_key(key)
        with self._write() as db:
            row = db.execute(
                "SELECT blob FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            ).fetchone()
            if row is None:
                self._missing(db, bucket, key)
            db.execute("DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        (self.blobs_dir / row[0]).unlink(missing_ok=True)

    def list(
        self,
        bucket: str,
        *,
        prefix: str = "",
        marker: str = "",
        max_keys: int = MAX_LIST_KEYS,
        delimiter: str = "",
    ) -> Listing:
        """One page of keys after ``marker`` under ``prefix``, in UTF-8 byte order (BOS's ListObjects).

        With a delimiter, keys sharing the text up to the first delimiter after the prefix fold into one
        common prefix; a page holds at most ``max_keys`` entries of both kinds together, and ``nextMarker``
        is the last entry, so the next page starts after a folded prefix's whole run of keys.
        """
        self.bucket(bucket)
        max_keys = max(1, min(max_keys, MAX_LIST_KEYS))
        contents: list[ObjectInfo] = []
        prefixes: list[str] = []
        last = ""
        truncated = False
        start = max(marker, prefix)
        query = (
            "SELECT key, size, md5, crc32, content_type, meta, modified_at FROM objects "
            "WHERE bucket = ? AND key >= ? ORDER BY key"
        )
        with self._read() as db:
            for key, size, md5, crc, ctype, meta, modified in db.execute(query, (bucket, start)):
                if not key.startswith(prefix):
                    break
                if key <= marker:
                    continue
                folded = ""
                if delimiter:
                    cut = key.find(delimiter, len(prefix))
                    folded = key[: cut + len(delimiter)] if cut >= 0 else ""
                if folded and (folded == last or folded <= marker):
                    continue
                if len(contents) + len(prefixes) == max_keys:
                    truncated = True
                    break
                if folded:
                    prefixes.append(folded)
                    last = folded
                else:
                    info = ObjectInfo(bucket, key, size, md5, crc, ctype, modified, _meta_from(meta))
                    contents.append(info)
                    last = key
        return Listing(
            bucket,
            prefix,
            delimiter,
            marker,
            max_keys,
            tuple(contents),
            tuple(prefixes),
            truncated,
            last if truncated else "",
        )

    def files_in(self, folder: BosUri) -> tuple[ObjectInfo, ...]:
        """The objects directly in a folder, as batch inference reads ``inputBosUri``: nothing from
        sub-folders, no folder markers (keys ending in ``/``)."""
        found: tuple[ObjectInfo, ...] = ()  # not list[...]: the method list() shadows the builtin here
        marker = ""
        while True:
            page = self.list(folder.bucket, prefix=folder.folder, marker=marker, delimiter="/")
            found += tuple(info for info in page.contents if not info.key.endswith("/"))
            if not page.is_truncated:
                return found
            marker = page.next_marker

    def iter_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, page by page."""
        marker = ""
        while True:
            page = self.list(bucket, prefix=prefix, marker=marker)
            yield from page.contents
            if not page.is_truncated:
                return
            marker = page.next_marker

    # -- plumbing --------------------------------------------------------------------------------------

    def _row(self, bucket: str, key: str) -> tuple[ObjectInfo, str]:
        check_key(key)
        with self._read() as db:
            row = db.execute(
                "SELECT blob, size, md5, crc32, content_type, meta, modified_at FROM objects "
                "WHERE bucket = ? AND key = ?",
                (bucket, key),
            ).fetchone()
            if row is None:
                self._missing(db, bucket, key)
        blob, size, md5, crc, ctype, meta, modified = row
        return ObjectInfo(bucket, key, size, md5, crc, ctype, modified, _meta_from(meta)), blob

    @staticmethod
    def _missing(db: sqlite3.Connection, bucket: str, key: str) -> NoReturn:
        if db.execute("SELECT 1 FROM buckets WHERE name = ?", (bucket,)).fetchone() is None:
            raise no_such_bucket(bucket)
        raise no_such_key(bucket, key)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.index_path, timeout=30.0, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            yield db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with closing(self._connect()) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _sweep(self) -> None:
        cutoff = time.time() - SWEEP_AFTER_S
        with self._read() as db:
            used = {blob for (blob,) in db.execute("SELECT blob FROM objects")}
        for folder, keep in ((self.tmp_dir, set()), (self.blobs_dir, used)):
            for path in folder.iterdir():
                with suppress(FileNotFoundError):
                    if path.name not in keep and path.stat().st_mtime < cutoff:
                        path.unlink()
