"""Model providers, one module per vendor. Each imports its SDK only when first used."""
