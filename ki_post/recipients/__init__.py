"""The Verteiler: organisations (Kommunen), their responsible officers, and named lists."""
