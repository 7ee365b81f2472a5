"""Grading a class outside the students' processes: see batch.grade_class and `python -m rnn_by_hand`."""
