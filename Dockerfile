FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
RUN pip install --no-cache-dir . 
COPY . .
RUN DJANGO_SECRET_KEY=build ALLOWED_HOSTS=build DJANGO_SETTINGS_MODULE=config.settings.production \
    AUDIT_CHAIN_KEYS=build:YnVpbGQtdGltZS1vbmx5LW5vdC1hLXNlY3JldC1rZXktZm9yLWNvbGxlY3RzdGF0aWM= \
    python manage.py collectstatic --noinput
# The audit checkpoints' volume (docker-compose.yml): writable by the app, not the database.
RUN mkdir -p /var/lib/releasegate/audit-checkpoints && chown nobody /var/lib/releasegate/audit-checkpoints
USER nobody
EXPOSE 8000
