"""GCP provider (Compute Engine): for now the live price refresh from the Cloud Billing Catalog API.

``client.py`` is the only module importing the google SDKs; ``pricing.py`` composes machine prices
from the catalog's SKUs and checks them against the shipped catalog. The provider class itself
arrives with the GCP inventory work.
"""
