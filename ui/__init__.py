"""Streamlit-side helpers shared by app.py and pages/. core/ never imports this."""
