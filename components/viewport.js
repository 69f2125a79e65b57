// Reports the window's width to Python on mount and after resizing (debounced). Invisible.
export default {
  template: '<span style="display: none"></span>',
  props: { debounceMs: { type: Number, default: 250 } },
  mounted() {
    this.report = () => this.$emit('width', { width: window.innerWidth });
    this.onResize = () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(this.report, this.debounceMs);
    };
    window.addEventListener('resize', this.onResize);
    this.report();
  },
  unmounted() {
    clearTimeout(this.timer);
    window.removeEventListener('resize', this.onResize);
  },
};
