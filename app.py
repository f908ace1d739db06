"""HyperThumb web app (placeholder until the app issue lands)."""
import gradio as gr

if __name__ == "__main__":
    gr.Markdown("HyperThumb").launch()
