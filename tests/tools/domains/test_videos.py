"""parse_video: every supported URL form, and hostile or malformed input refused with unprocessable
(the URL is a plain string in the schema: the parser's rules are stated in the description)."""

import pytest

from tests.support.factories import error, mcp_client, ok
from tests.support.reference_examples import PARSED_YOUTUBE_VIDEO, YOUTUBE_URL
from tools.core.errors import Unprocessable
from tools.domains.videos import parse_video_url

YOUTUBE_ID = "dQw4w9WgXcQ"

YOUTUBE_FORMS = [
    "https://youtube.com/watch?v=dQw4w9WgXcQ",
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
    "https://m.youtube.com/watch?v=dQw4w9WgXcQ",
    "http://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s",
    "https://www.youtube.com/watch?list=PL123&v=dQw4w9WgXcQ&index=2",
    "https://youtu.be/dQw4w9WgXcQ",
    "https://youtu.be/dQw4w9WgXcQ?t=10",
    "https://youtube.com/shorts/dQw4w9WgXcQ",
    "https://www.youtube.com/embed/dQw4w9WgXcQ",
    "https://www.youtube.com/embed/dQw4w9WgXcQ?start=30",
    "youtube.com/watch?v=dQw4w9WgXcQ",
    "youtu.be/dQw4w9WgXcQ",
]

VIMEO_FORMS = [
    ("https://vimeo.com/123456789", "123456789", "https://player.vimeo.com/video/123456789"),
    ("https://www.vimeo.com/123456789", "123456789", "https://player.vimeo.com/video/123456789"),
    ("https://player.vimeo.com/video/123456789", "123456789", "https://player.vimeo.com/video/123456789"),
    (
        "https://vimeo.com/123456789/abcdef1234",
        "123456789",
        "https://player.vimeo.com/video/123456789?h=abcdef1234",
    ),
    ("vimeo.com/76979871", "76979871", "https://player.vimeo.com/video/76979871"),
]

DIRECT_FORMS = [
    "https://cdn.example.com/video.mp4",
    "https://cdn.example.com/path/clip.webm",
    "https://cdn.example.com/a.ogg",
    "https://cdn.example.com/a.MOV",
    "https://stream.example.com/live/index.m3u8",
    "https://cdn.example.com/video.mp4?token=abc&expires=123",
]

HOSTILE = [
    "",
    "   ",
    "javascript:alert(1)",
    "data:video/mp4;base64,AAAA",
    "file:///etc/passwd",
    "ftp://example.com/video.mp4",
    "https://youtube.com/watch?v=" + "a" * 65,
    "https://youtube.com/watch?v=abc%20def",
    "https://youtube.com/watch?v=dQw4w9WgXcQ&v=dQw4w9WgXcQ",
    "https://youtube.com/watch",
    "https://youtu.be/",
    "https://youtu.be/dQw4w9WgXc!",
    "https://youtube.com/playlist?list=PL123",
    "https://vimeo.com/abc",
    "https://vimeo.com/123/NOT-HEX",
    "https://player.vimeo.com/123",
    "https://example.com/page.html",
    "https://evil.example/youtube.com/watch?v=dQw4w9WgXcQ",
    "https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ",
    "https://user:pass@youtube.com/watch?v=dQw4w9WgXcQ",
    "https://youtube.com@evil.example/video.html",
    "https://www.youtube.com/watch?v=<script>x</sc",
    "https://youtube.com:99999/watch?v=dQw4w9WgXcQ",
    "https://cdn.example.com/video.mp4\nX-Injected: 1",
    "https://cdn.example.com/vid eo.mp4",
    "https://cdn.example.com\\video.mp4",
    "https://" + "a" * 2100 + ".com/video.mp4",
    "https:///video.mp4",
    "//",
    "' OR 1=1 --",
    "{{7*7}}.mp4",
]


@pytest.mark.parametrize("url", YOUTUBE_FORMS)
def test_youtube_forms_parse_to_the_embed_url(url):
    video = parse_video_url(url)
    assert video.type == "youtube" and video.provider == "YouTube" and video.icon == "youtube"
    assert video.video_id == YOUTUBE_ID
    assert video.embed_url == f"https://www.youtube.com/embed/{YOUTUBE_ID}"
    assert video.thumbnail_url == f"https://img.youtube.com/vi/{YOUTUBE_ID}/maxresdefault.jpg"
    assert video.original_url == url and video.can_embed


@pytest.mark.parametrize(("url", "video_id", "embed"), VIMEO_FORMS)
def test_vimeo_forms_parse_to_the_player_url(url, video_id, embed):
    video = parse_video_url(url)
    assert (video.type, video.provider, video.video_id, video.embed_url) == (
        "vimeo",
        "Vimeo",
        video_id,
        embed,
    )


@pytest.mark.parametrize("url", DIRECT_FORMS)
def test_direct_files_embed_as_themselves(url):
    video = parse_video_url(url)
    assert (video.type, video.provider, video.video_id) == ("direct", "Direct", None)
    assert video.embed_url == url and video.can_embed


@pytest.mark.parametrize("url", HOSTILE)
def test_malformed_or_hostile_urls_are_refused(url):
    with pytest.raises(Unprocessable) as refused:
        parse_video_url(url)
    assert refused.value.message.startswith("Invalid input: url: ")


def test_at_least_fifteen_hostile_inputs_are_covered():
    assert len(HOSTILE) >= 15


async def test_parse_video_tool_answers_the_reference_example(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        result = ok(await client.call_tool("parse_video", {"url": YOUTUBE_URL}))
    assert result == {"video": PARSED_YOUTUBE_VIDEO}


async def test_parse_video_tool_names_the_reason(store, tenant):
    async with mcp_client(store, tenant.key) as client:
        body = error(await client.call_tool("parse_video", {"url": "javascript:alert(1)"}))
        missing = error(await client.call_tool("parse_video", {}))
    assert body["error"] == "unprocessable" and "http and https" in body["message"]
    assert missing == {"error": "bad_request", "message": "Invalid input: url: Field required"}


# --- properties -------------------------------------------------------------

from hypothesis import given, settings
from hypothesis import strategies as st

_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
youtube_ids = st.text(alphabet=_ID_ALPHABET, min_size=11, max_size=11)
youtube_templates = st.sampled_from(
    [
        "https://www.youtube.com/watch?v={id}",
        "https://m.youtube.com/watch?v={id}&t=1",
        "https://youtu.be/{id}",
        "https://youtube.com/shorts/{id}",
        "https://www.youtube.com/embed/{id}",
        "youtu.be/{id}?si=abc",
    ]
)


@settings(max_examples=200, deadline=None)
@given(video_id=youtube_ids, template=youtube_templates)
def test_property_every_youtube_form_round_trips_its_id(video_id, template):
    video = parse_video_url(template.format(id=video_id))
    assert video.video_id == video_id
    assert video.embed_url == f"https://www.youtube.com/embed/{video_id}"


@settings(max_examples=200, deadline=None)
@given(video_id=st.integers(min_value=1, max_value=10**12 - 1), player=st.booleans())
def test_property_every_vimeo_id_round_trips(video_id, player):
    url = f"https://player.vimeo.com/video/{video_id}" if player else f"https://vimeo.com/{video_id}"
    video = parse_video_url(url)
    assert (video.video_id, video.embed_url) == (str(video_id), f"https://player.vimeo.com/video/{video_id}")


@settings(max_examples=500, deadline=None)
@given(url=st.one_of(st.text(max_size=300), st.from_regex(r"https?://[^\s]{0,80}", fullmatch=True)))
def test_property_any_text_either_parses_to_a_safe_embed_or_is_a_bad_request(url):
    try:
        video = parse_video_url(url)
    except Unprocessable as refused:
        assert refused.message.startswith("Invalid input: url: ")
        return
    assert video.embed_url.startswith(
        ("https://www.youtube.com/embed/", "https://player.vimeo.com/video/", "http://", "https://")
    )
    assert not any(ch.isspace() for ch in video.embed_url)
    if video.type == "direct":
        assert video.embed_url.split("?")[0].lower().endswith((".mp4", ".webm", ".ogg", ".mov", ".m3u8"))
