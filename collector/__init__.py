"""Mesure's collector: the HTTP service that receives hits, applies consent and stores them."""
