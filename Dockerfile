FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
RUN pip install --no-cache-dir . 
COPY . .
RUN DJANGO_SECRET_KEY=build ALLOWED_HOSTS=build DJANGO_SETTINGS_MODULE=config.settings.production \
    python manage.py collectstatic --noinput
USER nobody
EXPOSE 8000
