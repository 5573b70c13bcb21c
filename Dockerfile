# The webchat image: the same code `make run` serves, for web, worker and beat.
# The chat page's browser libraries, from npm as package-lock.json pins them.
FROM node:20-slim AS frontend
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
COPY --from=frontend /build/node_modules ./node_modules
# Build output: translations, the code-highlighting stylesheet, collected static files.
# The same styles as the Makefile's `assets` (xcode keeps 4.5:1 contrast; only the dark rules scoped).
RUN python -m pygments -S xcode -f html -a .highlight > static/css/pygments.css \
    && python -m pygments -S github-dark -f html -a "[data-theme=dark] .highlight" | grep '^\[data-theme=dark\]' > static/css/pygments-dark.css \
    && DEBUG=True python manage.py compilemessages --ignore=.venv -v0 \
    && DEBUG=True python manage.py collectstatic --no-input -v0 \
    && useradd --create-home --uid 1000 webchat \
    && mkdir -p /app/var && chown -R webchat /app/var /app/staticfiles
USER webchat
EXPOSE 8000
# Several worker processes; they share sessions, the channel layer and quotas through
# PostgreSQL and Redis. The proxy in front passes X-Forwarded-* and websockets. No per-message
# deflate: a reply streams as many small frames, which it costs CPU to compress and barely shrinks.
# Client frames up to 256 KiB (a chat frame holds at most 64,000 characters; uvicorn's own
# default, 16 MiB, is held in memory before the app can refuse it).
# Idle connections kept 75 s: longer than the provider pool's 30 s (the demo model is this
# server) and than nginx's upstream keepalive, so neither reuses one the server is closing.
CMD ["uvicorn", "webchat.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "4", "--timeout-keep-alive", "75", \
     "--proxy-headers", "--forwarded-allow-ips", "*", "--lifespan", "off", "--ws", "websockets-sansio", \
     "--ws-per-message-deflate", "false", "--ws-max-size", "262144", "--no-access-log"]
