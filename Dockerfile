FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends gettext && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml ./
COPY . .
# Static files are collected with production settings (DEBUG off: hashed names and the
# manifest that DEBUG-off pages need). The build-time key and host are throw-away values;
# no database is contacted.
RUN pip install --no-cache-dir . && \
    DEBUG=0 SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost \
    python manage.py collectstatic --no-input -v 0 && \
    test -f staticfiles/staticfiles.json && \
    useradd --system --uid 10001 blend
USER blend
EXPOSE 8000
CMD ["gunicorn", "-c", "blend/gunicorn.conf.py", "blend.wsgi:application"]
