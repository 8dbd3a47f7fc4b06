"""Instagram exports of every era and package, with invented content, built in tmp_path.

Structure follows real exports: JSON with mojibake (UTF-8 bytes as \\u00xx), HTML pages with one
``div.uiBoxWhite`` block per post (caption, media with location/tagged-user tables, time), media files
under ``media/posts/YYYYMM/`` (``photos/YYYYMM/`` before 2020), personal information and privacy history.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from PIL import Image

USERNAME = "jane.doe"
# (era name, posts folder or None for media.json, personal information file or None)
JSON_ERAS = {
    "2025": ("your_instagram_activity/media", "personal_information/personal_information/personal_information.json"),
    "2023": ("your_instagram_activity/content", "personal_information/personal_information/personal_information.json"),
    "2021": ("content", "account_information/personal_information.json"),
}
HTML_ERAS = {
    "2025": ("your_instagram_activity/media", "personal_information/personal_information/personal_information.html"),
    "2023": ("your_instagram_activity/content", "personal_information/personal_information/personal_information.html"),
    "2022": ("content", "account_information/personal_information.html"),
}
# What every fixture holds: 3 posts (a photo with caption, a 2-photo carousel, a video), 4 media.
CAPTIONS = ["Café au lait ☕ #coffee #café #Zürich", "Weekend à la mer 🌊 #beach #sea", "clip #surf"]


def mojibake(text: str) -> str:
    return text.encode("utf-8").decode("latin-1")


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=True), encoding="ascii")


def write_image(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 32), (40 * seed % 256, 255 - 50 * seed % 256, 90 + seed)).save(path, "JPEG")


def media_paths(prefix: str = "media/posts") -> list[list[str]]:
    return [[f"{prefix}/202301/325468219_n_1790001.jpg"],
            [f"{prefix}/202302/330000001_n_1790002.jpg", f"{prefix}/202302/330000002_n_1790003.jpg"],
            [f"{prefix}/202303/340000001_n_1790004.mp4"]]


def write_media(root: Path, groups: list[list[str]]) -> None:
    for i, path in enumerate(p for g in groups for p in g):
        if path.endswith(".jpg"):
            write_image(root / path, i + 1)
        else:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real video")


def personal_information(private: bool | str | None = False, username: str = USERNAME) -> dict[str, Any]:
    fields = {"Email": {"href": "", "value": "jane@example.com", "timestamp": 0},
              "Username": {"href": "", "value": mojibake(username), "timestamp": 0},
              "Name": {"href": "", "value": mojibake("Jane Döe"), "timestamp": 0}}
    if private is not None:
        value = private if isinstance(private, str) else str(private)
        fields["Private Account"] = {"href": "", "value": value, "timestamp": 0}
    return {"profile_user": [{"title": "User Information", "media_map_data": {}, "string_map_data": fields}]}


def privacy_history(*switches: tuple[str, int]) -> dict[str, Any]:
    """``account_history_account_privacy_history`` entries, e.g. ("Account switched to private", 1700000000)."""
    return {"account_history_account_privacy_history": [
        {"title": title, "media_map_data": {}, "string_map_data": {"Time": {"href": "", "value": "", "timestamp": t}}}
        for title, t in switches]}


def json_posts(groups: list[list[str]]) -> list[dict[str, Any]]:
    exif = {"latitude": 48.858370, "longitude": 2.294481, "device_id": "android-1a2b3c"}
    posts = []
    for n, (group, caption) in enumerate(zip(groups, CAPTIONS)):
        t = 1674000000 + n * 1_000_000
        media = [{"uri": uri, "creation_timestamp": t, "title": "" if len(group) > 1 else mojibake(caption),
                  "media_metadata": {"photo_metadata": {"exif_data": [exif]}},
                  "cross_post_source": {"source_app": "FB"}} for uri in group]
        post: dict[str, Any] = {"media": media}
        if len(group) > 1:
            post.update(title=mojibake(caption), creation_timestamp=t)
        posts.append(post)
    return posts


def json_export(root: Path, era: str = "2025", private: bool | str | None = False) -> Path:
    """A JSON export of ``era`` (2025, 2023, 2021) with the 3 posts and their media."""
    folder, profile = JSON_ERAS[era]
    groups = media_paths()
    write_json(root / folder / "posts_1.json", json_posts(groups))
    if private is not None or era:
        write_json(root / profile, personal_information(private))
    write_media(root, groups)
    write_json(root / folder / "stories.json", {"ig_stories": []})
    return root


def legacy_export(root: Path, private: bool = False) -> Path:
    """A pre-2020 export: media.json (carousel photos share taken_at and caption), profile.json, photos/."""
    groups = media_paths("photos")
    groups[2] = ["videos/201803/340000001_n_1790004.mp4"]
    times = ["2018-01-17T23:58:00+00:00", "2018-02-01T10:00:00+00:00", "2018-03-05T09:30:00+00:00"]
    entry = lambda path, i: {"caption": mojibake(CAPTIONS[i]), "taken_at": times[i], "path": path,  # noqa: E731
                             "location": "Somewhere"}
    media = {"photos": [entry(p, i) for i in (0, 1) for p in groups[i]],
             "videos": [entry(groups[2][0], 2)],
             "profile": [{"caption": "", "taken_at": times[0], "is_active_profile": True, "path": "profile/p.jpg"}],
             "stories": [{"caption": "", "taken_at": times[1], "path": "stories/201802/s.jpg"}]}
    write_json(root / "media.json", media)
    write_json(root / "profile.json", {"username": USERNAME, "name": mojibake("Jane Döe"), "private_account": private,
                                       "email": "jane@example.com", "date_joined": "2012-06-01T10:00:00"})
    write_media(root, groups)
    return root


def html_post(caption: str, uris: list[str], when: str) -> str:
    media = "".join(
        f'<a target="_blank" href="{u}"><img src="{u}" class="_a6_o _3-96" /></a>' if u.endswith(".jpg")
        else f'<video src="{u}" controls class="_a6_o _3-96"></video>' for u in uris)
    tables = ('<table style="table-layout: fixed;"><tr><td colspan="2" class="_2pin _a6_q">'
              '<div class="_a6-q">Latitude</div><div><div class="_a6-q">48.8583</div></div></td></tr>'
              '<tr><td colspan="2" class="_2pin _a6_q"><div class="_a6-q">Tagged users</div>'
              '<div><div class="_a6-q">someone (Tagged, 0.00, 0.00)</div></div></td></tr></table>')
    caption_div = f'<div class="_3-95 _2pim _a6-h _a6-i">{html.escape(caption)}</div>' if caption else ""
    return (f'<div class="pam _3-95 _2ph- _a6-g uiBoxWhite noborder">{caption_div}'
            f'<div class="_3-95 _a6-p"><div>{media}</div>{tables}</div>'
            f'<div class="_3-94 _a6-o">{when}</div></div>')


def html_page(title: str, body: str, depth: int = 2) -> str:
    up = "../" * depth
    return (f'<html><head><meta charset="utf-8" /><title>{title}</title></head><body class="_5vb_ _2yq _a7o5">'
            f'<div class="clearfix _ikh"><div class="_4bl9"><div class="_li"><div class="_a705">'
            f'<div class="_a706" role="main">{body}</div></div></div></div></div>'
            f'<img src="{up}files/Instagram-Logo.png" /></body></html>')


WHENS = ["Jan 18, 2023 12:00 am", "Jan 29, 2023, 1:46 PM", "Feb 21, 2023 5:20 pm"]


def html_export(root: Path, era: str = "2025", private: bool = False) -> Path:
    """An HTML export of ``era`` (2025, 2023, 2022): posts_1.html, personal information page, media."""
    folder, profile = HTML_ERAS[era]
    groups = media_paths()
    body = "".join(html_post(c, g, w) for c, g, w in zip(CAPTIONS, groups, WHENS))
    page = root / folder / "posts_1.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(html_page("Posts", body, folder.count("/") + 1), encoding="utf-8")
    rows = "".join(f'<tr><td colspan="2" class="_2pin _a6_q">{label}<div><div>{value}</div></div></td></tr>'
                   for label, value in (("Username", USERNAME), ("Name", "Jane Döe"),
                                        ("Private Account", str(private))))
    (root / profile).parent.mkdir(parents=True, exist_ok=True)
    (root / profile).write_text(html_page("Personal information", f'<div class="uiBoxWhite"><table>{rows}</table>'
                                          "</div>"), encoding="utf-8")
    (root / "start_here.html").write_text(html_page("Your information", ""), encoding="utf-8")
    write_media(root, groups)
    return root
