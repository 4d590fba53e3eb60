// A page of the backend in a web-view (a topic's discussion): the member's own signed link, on the
// mini-program's business domain (docs/小程序.md).
Component({
  data: { url: '' },
  methods: {
    onLoad(options) { this.setData({ url: decodeURIComponent((options && options.url) || '') }) },
  },
})
