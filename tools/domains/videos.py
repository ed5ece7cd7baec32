"""Video URL parsing (YouTube, Vimeo, direct files) and the `parse_video` operation.

Parsing is pure string work: no network access, so it is safe on hostile input.
Lessons reuse `parse_video_url` for their `videoUrl`.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field

from storage.rules import VideoType
from tools.core.catalog import operation
from tools.core.context import OperationContext
from tools.core.errors import Unprocessable
from tools.core.models import InputModel, OutputModel

__all__ = ["ParseVideoInput", "VideoInfo", "VideoResult", "parse_video", "parse_video_url"]

MAX_VIDEO_URL_LENGTH = 2048
DIRECT_EXTENSIONS = (".mp4", ".webm", ".ogg", ".mov", ".m3u8")
_YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
_YOUTUBE_NOCOOKIE_HOSTS = {"youtube-nocookie.com", "www.youtube-nocookie.com"}
_YOUTUBE_SHORT_HOSTS = {"youtu.be", "www.youtu.be"}
_VIMEO_HOSTS = {"vimeo.com", "www.vimeo.com"}
_VIMEO_PLAYER_HOSTS = {"player.vimeo.com"}
# Real ids are 11 characters, but the API reference's own examples use short ones (`abc123`).
_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_VIMEO_ID = re.compile(r"[0-9]{1,12}")
_VIMEO_HASH = re.compile(r"[0-9a-f]{6,20}")
_YOUTUBE_PATH_PREFIXES = ("shorts", "embed", "live", "v")


class VideoInfo(OutputModel):
    type: VideoType
    original_url: str
    video_id: str | None
    embed_url: str
    thumbnail_url: str | None
    provider: Literal["YouTube", "Vimeo", "Direct"]
    icon: str
    can_embed: bool


class ParseVideoInput(InputModel):
    url: str = Field(max_length=MAX_VIDEO_URL_LENGTH)


class VideoResult(OutputModel):
    video: VideoInfo


class _Rejected(Exception):
    """Why a URL is not a supported video; becomes an `unprocessable` (the parser's rules are the
    forms `urlsplit` and `parse_qs` read, which no JSON Schema pattern states exactly)."""


def _youtube(video_id: str, original: str) -> VideoInfo:
    if not _YOUTUBE_ID.fullmatch(video_id):
        raise _Rejected("a YouTube video id is letters, digits, '-' or '_'")
    return VideoInfo(
        type="youtube",
        original_url=original,
        video_id=video_id,
        embed_url=f"https://www.youtube.com/embed/{video_id}",
        thumbnail_url=f"https://img.youtube.com/vi/{video_id}/maxresdefault.jpg",
        provider="YouTube",
        icon="youtube",
        can_embed=True,
    )


def _vimeo(video_id: str, unlisted_hash: str | None, original: str) -> VideoInfo:
    if not _VIMEO_ID.fullmatch(video_id):
        raise _Rejected("a Vimeo video id is a number")
    if unlisted_hash is not None and not _VIMEO_HASH.fullmatch(unlisted_hash):
        raise _Rejected("a Vimeo unlisted hash is 6-20 lowercase hex characters")
    embed = f"https://player.vimeo.com/video/{video_id}"
    if unlisted_hash:
        embed += f"?h={unlisted_hash}"
    # Vimeo thumbnails need an API call; parsing never goes to the network.
    return VideoInfo(
        type="vimeo",
        original_url=original,
        video_id=video_id,
        embed_url=embed,
        thumbnail_url=None,
        provider="Vimeo",
        icon="vimeo",
        can_embed=True,
    )


def _path_segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def _parse_youtube(host: str, path: str, query: str, original: str) -> VideoInfo:
    segments = _path_segments(path)
    if host in _YOUTUBE_SHORT_HOSTS:
        if len(segments) != 1:
            raise _Rejected("a youtu.be link is youtu.be/VIDEO_ID")
        return _youtube(segments[0], original)
    if segments == ["watch"]:
        ids = parse_qs(query).get("v", [])
        if len(ids) != 1:
            raise _Rejected("a YouTube watch link needs exactly one v= parameter")
        return _youtube(ids[0], original)
    if len(segments) == 2 and segments[0] in _YOUTUBE_PATH_PREFIXES:
        return _youtube(segments[1], original)
    raise _Rejected("use youtube.com/watch?v=ID, youtu.be/ID, youtube.com/shorts/ID or youtube.com/embed/ID")


def _parse_vimeo(host: str, path: str, query: str, original: str) -> VideoInfo:
    segments = _path_segments(path)
    if host in _VIMEO_PLAYER_HOSTS:
        if len(segments) != 2 or segments[0] != "video":
            raise _Rejected("a Vimeo player link is player.vimeo.com/video/ID")
        hashes = parse_qs(query).get("h", [])
        return _vimeo(segments[1], hashes[0] if hashes else None, original)
    if len(segments) == 1:
        return _vimeo(segments[0], None, original)
    if len(segments) == 2 and _VIMEO_ID.fullmatch(segments[0]):
        return _vimeo(segments[0], segments[1], original)
    if len(segments) == 3 and segments[0] == "channels":
        return _vimeo(segments[2], None, original)
    raise _Rejected("use vimeo.com/ID, vimeo.com/ID/HASH or player.vimeo.com/video/ID")


def _parse(url: str) -> VideoInfo:
    if not url:
        raise _Rejected("the URL is empty")
    if len(url) > MAX_VIDEO_URL_LENGTH:
        raise _Rejected(f"the URL is longer than {MAX_VIDEO_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise _Rejected("the URL contains whitespace or control characters")
    if "\\" in url:
        raise _Rejected("the URL contains a backslash")
    candidate = url
    if "://" not in candidate and ":" not in candidate.split("/", 1)[0]:
        candidate = "https://" + candidate  # "youtu.be/ID" and friends, written without a scheme
    try:
        parts = urlsplit(candidate)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise _Rejected("the URL is malformed") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise _Rejected(f"only http and https URLs are supported, not {parts.scheme or 'this'}:")
    if parts.username is not None or parts.password is not None:
        raise _Rejected("the URL must not contain credentials")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise _Rejected("the URL has no host")
    if host in _YOUTUBE_HOSTS or host in _YOUTUBE_NOCOOKIE_HOSTS or host in _YOUTUBE_SHORT_HOSTS:
        return _parse_youtube(host, parts.path, parts.query, url)
    if host in _VIMEO_HOSTS or host in _VIMEO_PLAYER_HOSTS:
        return _parse_vimeo(host, parts.path, parts.query, url)
    if parts.path.lower().endswith(DIRECT_EXTENSIONS):
        return VideoInfo(
            type="direct",
            original_url=url,
            video_id=None,
            embed_url=candidate,
            thumbnail_url=None,
            provider="Direct",
            icon="video",
            can_embed=True,
        )
    raise _Rejected(
        f"unsupported video host {host}: use YouTube, Vimeo, or a direct link ending in "
        + ", ".join(DIRECT_EXTENSIONS)
    )


def parse_video_url(url: str, *, field: str = "url") -> VideoInfo:
    """Parse `url` into provider, id, embed and thumbnail URLs; `Unprocessable` naming `field` if unsupported."""
    try:
        return _parse(url.strip())
    except _Rejected as exc:
        raise Unprocessable(f"Invalid input: {field}: {exc}") from None


@operation(
    title="Parse video URL",
    permission=None,
    http=("POST", "/videos/parse"),
    input_rules=(
        "url is a supported video link: YouTube (youtube.com/watch?v=ID, youtu.be/ID, youtube.com/shorts/ID or /embed/ID), Vimeo (vimeo.com/ID, player.vimeo.com/video/ID) or a direct file (.mp4, .webm, .ogg, .mov, .m3u8).",
    ),
    kind="read",
)
async def parse_video(ctx: OperationContext, data: ParseVideoInput) -> VideoResult:
    """Parse a YouTube, Vimeo or direct video URL: provider, id, embed, thumbnail."""
    return VideoResult(video=parse_video_url(data.url))
