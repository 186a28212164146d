"""jtop samples turned into flat, board-independent readings in base units."""
