"""How fast the chat page paints, and how much it makes a browser download (issue 12).

    .venv/bin/python bench/page_paint.py [--runs 20]

It starts webchat's ASGI server (uvicorn, DEBUG off, static files through WhiteNoise as in
production) on a throwaway SQLite database, signs a student in (a real session), and loads the
chat page in Debian's headless Chromium `--runs` times:

- cold: each load in a fresh browser context (empty cache, new connection);
- warm: the same context again and again (cached static files, as a student's second visit).

It prints first contentful paint (performance.getEntriesByType('paint')) p50 and p95 for each,
and the size of every script and stylesheet the page loaded, raw and gzip-compressed
(level 6, what nginx and WhiteNoise's compressed storage use), with the total against the goal.
A benchmark, not a test: the figures depend on the machine; README.md keeps the last ones.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import signal
import subprocess
import time

from _setup import ROOT, django_up, percentile, server_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]  # fmt: skip
GOAL_FCP_MS = 1000
GOAL_GZIP_KB = 250
FCP = "(performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint') || {}).startTime"


def page_server_env(port: int) -> dict[str, str]:
    # Serve static/ as it is now (no collectstatic needed), with production's headers.
    return server_env(port, WHITENOISE_USE_FINDERS="True")


async def wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
            continue
        writer.close()
        return
    raise SystemExit(f"the server did not start on port {port}")


def student_signed_in() -> str:
    """A student in a class, signed in through Django's session machinery: the session cookie."""
    from django.test import Client

    from apps.accounts.models import User
    from apps.accounts.services import classroom_get_or_create, enrollment_add, user_upsert

    teacher, _ = user_upsert(username="bench-teacher", role=User.Role.TEACHER)
    classroom, _ = classroom_get_or_create(name="bench", teacher=teacher)
    student, _ = user_upsert(username="bench-student", role=User.Role.STUDENT)
    enrollment_add(classroom=classroom, student=student)
    client = Client()
    client.force_login(student)
    return client.cookies["sessionid"].value


def fcp_ms(page: object) -> float:
    page.wait_for_selector("#chat")  # type: ignore[attr-defined]
    for _ in range(100):
        value = page.evaluate(FCP)  # type: ignore[attr-defined]
        if value:
            return float(value)
        page.wait_for_timeout(20)  # type: ignore[attr-defined]
    raise SystemExit("no first-contentful-paint entry")


def measure(*, base_url: str, cookie: str, runs: int) -> None:
    from playwright.sync_api import sync_playwright

    cookies = [{"name": "sessionid", "value": cookie, "url": base_url}]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        viewport = {"width": 1280, "height": 800}

        # Page weight: every script and stylesheet the chat page loads, as the browser got it.
        context = browser.new_context(base_url=base_url, viewport=viewport)
        context.add_cookies(cookies)
        page = context.new_page()
        assets: dict[str, str] = {}
        page.on(
            "response",
            lambda response: (
                assets.setdefault(response.url, response.request.resource_type)
                if response.request.resource_type in ("script", "stylesheet")
                else None
            ),
        )
        page.goto("/", wait_until="load")
        fcp_ms(page)
        print("files the chat page loads (raw / gzip -6):")
        total_raw = total_gzip = 0
        for url in sorted(assets):
            body = context.request.get(url).body()
            packed = len(gzip.compress(body, compresslevel=6))
            total_raw += len(body)
            total_gzip += packed
            print(f"  {url.removeprefix(base_url):55} {len(body) / 1024:7.1f} KB {packed / 1024:7.1f} KB")
        verdict = "within" if total_gzip / 1024 < GOAL_GZIP_KB else "OVER"
        print(f"  {'JS + CSS total':55} {total_raw / 1024:7.1f} KB {total_gzip / 1024:7.1f} KB  "
              f"({verdict} the {GOAL_GZIP_KB} KB goal)")  # fmt: skip
        context.close()

        cold = []
        for _ in range(runs):
            context = browser.new_context(base_url=base_url, viewport=viewport)
            context.add_cookies(cookies)
            page = context.new_page()
            page.goto("/", wait_until="load")
            cold.append(fcp_ms(page))
            context.close()

        warm = []
        context = browser.new_context(base_url=base_url, viewport=viewport)
        context.add_cookies(cookies)
        page = context.new_page()
        page.goto("/", wait_until="load")  # fills the cache
        for _ in range(runs):
            page.goto("about:blank")
            page.goto(base_url + "/", wait_until="load")
            warm.append(fcp_ms(page))
        context.close()
        browser.close()

    print(f"first contentful paint over {runs} loads (goal < {GOAL_FCP_MS} ms):")
    for name, values in (("cold", cold), ("warm", warm)):
        print(f"  {name}: p50 {percentile(values, 0.5):6.0f} ms   p95 {percentile(values, 0.95):6.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--port", type=int, default=8771)
    args = parser.parse_args()
    os.environ.update({k: v for k, v in page_server_env(args.port).items() if k not in os.environ or k == "DEBUG"})
    database = django_up()
    cookie = student_signed_in()
    from django.db import connections

    connections.close_all()
    print(f"database: {database}; {args.runs} loads each, cold and warm", flush=True)
    server = subprocess.Popen(
        [str(ROOT / ".venv" / "bin" / "uvicorn"), "webchat.asgi:application", "--host", "127.0.0.1",
         "--port", str(args.port), "--lifespan", "off", "--no-access-log", "--log-level", "warning"],
        cwd=ROOT,
        env=page_server_env(args.port),
    )  # fmt: skip
    try:
        asyncio.run(wait_for_port(args.port, timeout=120))
        measure(base_url=f"http://127.0.0.1:{args.port}", cookie=cookie, runs=args.runs)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
