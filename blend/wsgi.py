import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blend.settings")

application = get_wsgi_application()

# What the worker holds once the app is loaded (about 115,000 objects: modules, classes,
# URL patterns, serializer fields) lives as long as the worker. Frozen, the cyclic garbage
# collector stops walking it on every full collection: unfrozen, a full collection came
# about once in 100 requests and took 100-170 ms, which was a page's p95 (make bench).
gc.collect()
gc.freeze()
