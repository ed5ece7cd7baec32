"""Bodies copied from api-reference.txt, for the tests that check the API answers its own examples."""

from __future__ import annotations

from tests.support.factories import DEFAULT_CATEGORY_ID

# The create_course example of api-reference.txt, verbatim but for its placeholder categoryId.
REFERENCE_COURSE = {
    "title": "Mastering TypeScript",
    "slug": "mastering-typescript",
    "description": "A comprehensive guide to TypeScript...",
    "shortDescription": "Learn TypeScript from scratch",
    "price": 4999,
    "level": "intermediate",
    "categoryId": DEFAULT_CATEGORY_ID,
    "sections": [
        {
            "title": "Getting Started",
            "lessons": [
                {
                    "title": "What is TypeScript?",
                    "description": "An introduction to TypeScript",
                    "duration": 600,
                    "videoUrl": "https://youtube.com/watch?v=abc123",
                    "isPreview": True,
                },
                {
                    "title": "Setting Up Your Environment",
                    "duration": 480,
                    "videoUrl": "https://vimeo.com/123456789",
                },
            ],
        },
        {
            "title": "Type System Deep Dive",
            "lessons": [
                {
                    "title": "Primitive Types",
                    "duration": 720,
                    "videoUrl": "https://cdn.example.com/video.mp4",
                }
            ],
        },
    ],
}

# The parse_video example: POST /videos/parse {"url": YOUTUBE_URL} answers {"video": PARSED_YOUTUBE_VIDEO}.
YOUTUBE_URL = "https://youtube.com/watch?v=dQw4w9WgXcQ"
PARSED_YOUTUBE_VIDEO = {
    "type": "youtube",
    "originalUrl": "https://youtube.com/watch?v=dQw4w9WgXcQ",
    "videoId": "dQw4w9WgXcQ",
    "embedUrl": "https://www.youtube.com/embed/dQw4w9WgXcQ",
    "thumbnailUrl": "https://img.youtube.com/vi/dQw4w9WgXcQ/maxresdefault.jpg",
    "provider": "YouTube",
    "icon": "youtube",
    "canEmbed": True,
}
