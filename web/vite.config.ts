import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

/** Where `pnpm --filter @barnraise/web dev` sends API calls: a coordinator on its default port. */
const COORDINATOR = process.env.BARNRAISE_COORDINATOR_URL ?? 'http://127.0.0.1:8080'

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    rollupOptions: {
      // zod ships comments Rollup cannot place; the warning is about their code, not ours.
      onwarn (warning, warn) {
        if (warning.code === 'INVALID_ANNOTATION' && warning.id?.includes('node_modules') === true) return
        warn(warning)
      }
    }
  },
  server: {
    proxy: {
      '/trpc': { target: COORDINATOR, changeOrigin: false },
      '/api': { target: COORDINATOR, changeOrigin: false },
      '/healthz': { target: COORDINATOR, changeOrigin: false }
    }
  }
})
