import { StrictMode, useState } from 'react'
import type { ReactNode } from 'react'
import { createRoot } from 'react-dom/client'
import { QueryClientProvider } from '@tanstack/react-query'
import { TRPCProvider, makeQueryClient, makeTrpcClient } from './lib/trpc.ts'
import { App } from './App.tsx'
import './styles.css'

function Root (): ReactNode {
  const [queryClient] = useState(makeQueryClient)
  const [trpcClient] = useState(makeTrpcClient)
  return (
    <QueryClientProvider client={queryClient}>
      <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
        <App />
      </TRPCProvider>
    </QueryClientProvider>
  )
}

createRoot(document.getElementById('root')!).render(<StrictMode><Root /></StrictMode>)
