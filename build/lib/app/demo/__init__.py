"""The bundled demo data set (goodbooks-10k extract, CC BY-SA 4.0) and its loader."""
