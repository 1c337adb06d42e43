"""Streamlit-side helpers shared by app.py and views/. core/ never imports this."""
